-- register_worker refuses a malformed worker id (WF001), a heartbeat timeout below 1 s and
-- handlers that are not {"flow": ["step", ...]} (WF010), and stores nothing.
begin;
\ir ../_helpers.psql
select plan(6);

select throws_ok($$select workflow.register_worker('bad id')$$, 'WF001', null, 'a space in the id is WF001');
select throws_ok($$select workflow.register_worker(null)$$, 'WF001', null, 'a null id is WF001');
select throws_ok($$select workflow.register_worker('w', heartbeat_timeout_seconds => 0)$$, 'WF010', null, 'a 0 s timeout is WF010');
select throws_ok($$select workflow.register_worker('w', handlers => '["a"]')$$, 'WF010', null, 'handlers as an array is WF010');
select throws_ok($$select workflow.register_worker('w', handlers => '{"f": "a"}')$$, 'WF010', null, 'steps not in an array is WF010');
select is((select count(*) from workflow.workers), 0::bigint, 'nothing is stored');

select * from finish();
rollback;
