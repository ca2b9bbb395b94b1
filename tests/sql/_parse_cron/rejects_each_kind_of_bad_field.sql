-- _parse_cron refuses a bad expression with WF027 and a message naming the field and why.
begin;
\ir ../_helpers.psql
select plan(12);

select throws_like($$select workflow._parse_cron('* * * *')$$, '%expected 5 fields%got 4%', 'four fields');
select throws_like($$select workflow._parse_cron('')$$, '%expected 5 fields%got 0%', 'empty');
select throws_like($$select workflow._parse_cron('@often')$$, '%unknown shorthand%', 'unknown shorthand');
select throws_like($$select workflow._parse_cron('60 * * * *')$$, '%minute field value 60 is out of range 0-59%', 'minute out of range');
select throws_like($$select workflow._parse_cron('0 24 * * *')$$, '%hour field value 24 is out of range 0-23%', 'hour out of range');
select throws_like($$select workflow._parse_cron('0 0 0 * *')$$, '%day of month field value 0 is out of range 1-31%', 'day of month out of range');
select throws_like($$select workflow._parse_cron('0 0 * 13 *')$$, '%month field value 13 is out of range 1-12%', 'month out of range');
select throws_like($$select workflow._parse_cron('0 0 * * 8')$$, '%day of week field value 8 is out of range 0-7%', 'day of week out of range');
select throws_like($$select workflow._parse_cron('0 0 * * funday')$$, '%day of week field value ''funday'' is not a number or a day name%', 'unknown day name');
select throws_like($$select workflow._parse_cron('0 5-2 * * *')$$, '%hour field range 5-2 runs backwards%', 'backwards range');
select throws_like($$select workflow._parse_cron('*/0 * * * *')$$, '%minute field step ''0'' must be a positive integer%', 'zero step');
select throws_ok($$select workflow._parse_cron('1,,2 * * * *')$$, 'WF027', null, 'an empty list item is WF027');

select * from finish();
rollback;
