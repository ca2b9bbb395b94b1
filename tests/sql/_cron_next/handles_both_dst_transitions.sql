-- _cron_next in Europe/Berlin across both changes of 2026 (29 March 02:00 CET -> 03:00 CEST,
-- 25 October 03:00 CEST -> 02:00 CET):
-- a skipped local time (02:30 in March) fires one clock hour later, at 03:30 CEST (01:30 UTC);
-- a repeated local time (02:30 in October) fires once, at its first occurrence (00:30 UTC);
-- a */30 schedule walks through both nights without a repeated or out-of-order tick.
begin;
\ir ../_helpers.psql
select plan(6);

select is(workflow._cron_next(workflow._parse_cron('30 2 * * *'), '2026-03-28 12:00Z', 'Europe/Berlin'),
    '2026-03-29 01:30Z'::timestamptz, 'the skipped 02:30 fires at 03:30 CEST');
select is(workflow._cron_next(workflow._parse_cron('30 2 * * *'), '2026-10-24 12:00Z', 'Europe/Berlin'),
    '2026-10-25 00:30Z'::timestamptz, 'the repeated 02:30 fires at its first occurrence');
select is(workflow._cron_next(workflow._parse_cron('30 2 * * *'), '2026-10-25 00:30Z', 'Europe/Berlin'),
    '2026-10-26 01:30Z'::timestamptz, 'and not again at its second occurrence');

create temporary table ticks on commit drop as
with recursive r (t, i) as (
    select workflow._cron_next(workflow._parse_cron('*/30 * * * *'), '2026-03-29 00:10Z', 'Europe/Berlin'), 1
    union all
    select workflow._cron_next(workflow._parse_cron('*/30 * * * *'), r.t, 'Europe/Berlin'), r.i + 1 from r where r.i < 6
)
select * from r;
select is(array(select t from ticks order by i),
    array['2026-03-29 00:30Z', '2026-03-29 01:00Z', '2026-03-29 01:30Z', '2026-03-29 02:00Z',
          '2026-03-29 02:30Z', '2026-03-29 03:00Z']::timestamptz[],
    'spring forward: every half hour of real time, once');

create temporary table fall on commit drop as
with recursive r (t, i) as (
    select workflow._cron_next(workflow._parse_cron('0 * * * *'), '2026-10-24 23:10Z', 'Europe/Berlin'), 1
    union all
    select workflow._cron_next(workflow._parse_cron('0 * * * *'), r.t, 'Europe/Berlin'), r.i + 1 from r where r.i < 4
)
select * from r;
select is(array(select t from fall order by i),
    array['2026-10-25 00:00Z', '2026-10-25 02:00Z', '2026-10-25 03:00Z', '2026-10-25 04:00Z']::timestamptz[],
    'fall back: 02:00 fires once, in summer time; then 03:00, 04:00, 05:00 winter time');
select is(workflow._cron_next(workflow._parse_cron('0 12 * * mon'), '2026-12-01 17:00Z', 'America/New_York'),
    '2026-12-07 17:00Z'::timestamptz, 'a weekday in another zone');

select * from finish();
rollback;
