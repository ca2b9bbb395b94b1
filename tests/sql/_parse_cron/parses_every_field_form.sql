-- _parse_cron reads each form of each field: *, values, ranges, lists, steps (on *, on a range,
-- and on a start value), month and day names (case-insensitive, in ranges too), 7 as Sunday,
-- and the @shorthands; it records whether day of month / day of week are *.
begin;
\ir ../_helpers.psql
select plan(14);

select is(workflow._parse_cron('* * * * *') -> 'minute', to_jsonb(array(select generate_series(0, 59))), '* is every minute');
select is(workflow._parse_cron('5 * * * *') -> 'minute', '[5]'::jsonb, 'a value');
select is(workflow._parse_cron('0 9-11 * * *') -> 'hour', '[9, 10, 11]'::jsonb, 'a range');
select is(workflow._parse_cron('0 1,3,2,3 * * *') -> 'hour', '[1, 2, 3]'::jsonb, 'a list, sorted without repeats');
select is(workflow._parse_cron('*/15 * * * *') -> 'minute', '[0, 15, 30, 45]'::jsonb, 'a step on *');
select is(workflow._parse_cron('0 0 1-10/3 * *') -> 'dom', '[1, 4, 7, 10]'::jsonb, 'a step on a range');
select is(workflow._parse_cron('5/20 * * * *') -> 'minute', '[5, 25, 45]'::jsonb, 'a step on a start value runs to the maximum');
select is(workflow._parse_cron('0 0 * JAN,mar-May *') -> 'month', '[1, 3, 4, 5]'::jsonb, 'month names, in lists and ranges');
select is(workflow._parse_cron('0 0 * * Mon-fri') -> 'dow', '[1, 2, 3, 4, 5]'::jsonb, 'day names in a range');
select is(workflow._parse_cron('0 0 * * 5-7') -> 'dow', '[0, 5, 6]'::jsonb, '7 is Sunday');
select is(workflow._parse_cron('@hourly'), workflow._parse_cron('0 * * * *'), '@hourly');
select is(
    array[workflow._parse_cron('@daily'), workflow._parse_cron('@weekly'), workflow._parse_cron('@monthly'), workflow._parse_cron('@yearly')],
    array[workflow._parse_cron('0 0 * * *'), workflow._parse_cron('0 0 * * 0'), workflow._parse_cron('0 0 1 * *'), workflow._parse_cron('0 0 1 1 *')],
    '@daily, @weekly, @monthly, @yearly');
select is(
    (select array[(p ->> 'dom_any')::boolean, (p ->> 'dow_any')::boolean] from workflow._parse_cron('0 0 1 * mon') as p),
    array[false, false], 'both day fields restricted');
select is(
    (select array[(p ->> 'dom_any')::boolean, (p ->> 'dow_any')::boolean] from workflow._parse_cron('0 0 */2 * *') as p),
    array[true, true], 'a field starting with * counts as unrestricted');

select * from finish();
rollback;
