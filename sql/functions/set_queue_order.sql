-- set_queue_order: make a queue ordered: claims take its tasks by priority with aging and fairly
-- across keys, instead of oldest message first.
--
-- Called by psql users, the CLI (`limits order`) and Client.set_queue_order, once per queue (a
-- repeated call changes the constants). Creates the index the ordered claim scans, on the tag
-- message ->> 'ord' of the queue's pgmq table (the queue is created if it does not exist yet), and
-- gives messages already in the queue the tag of their enqueue time, so none is left behind.
-- From then on every task sent to the queue gets its tag (see _order_messages):
--   tag = max(now, lowest tag in the queue, its key's clock) + (its rank among its key's tasks
--         sent together) * spacing_seconds - priority * aging_seconds
-- so a task of priority p is taken before tasks of lower priority enqueued up to
-- p * aging_seconds after it, and after any enqueued earlier than that (aging: a waiting task
-- can be passed over only for that long, so low priority is never starved), and a key's burst of
-- n tasks is spread over n * spacing_seconds of the queue's virtual time, between which other
-- keys' tasks interleave. remove_queue_order(queue_name) goes back to oldest first.
-- Locks: the queue_orders row; creating the index locks the queue's table (SHARE) for the time
-- of the build, so turn ordering on before the queue is busy. Errors: WF001 a malformed queue
-- name, WF023 a non-positive aging or spacing. Safe to repeat.
create or replace function workflow.set_queue_order(
    queue_name text,
    aging_seconds numeric default 60,
    spacing_seconds numeric default 1
)
returns workflow.queue_orders
language plpgsql
set search_path = ''
as $$
declare
    v_row workflow.queue_orders;
begin
    -- GUARD
    perform workflow._validate_name('queue', set_queue_order.queue_name);
    if set_queue_order.aging_seconds is null or set_queue_order.aging_seconds <= 0
        or set_queue_order.spacing_seconds is null or set_queue_order.spacing_seconds <= 0 then
        raise exception 'aging and spacing must be positive seconds, got % and %',
            coalesce(set_queue_order.aging_seconds::text, 'null'), coalesce(set_queue_order.spacing_seconds::text, 'null')
            using errcode = 'WF023';
    end if;
    if not exists (select 1 from pgmq.meta m where m.queue_name = set_queue_order.queue_name) then
        perform pgmq.create(set_queue_order.queue_name);
        perform workflow._tune_queue(set_queue_order.queue_name);
    end if;
    execute format(
        'create index if not exists %I on pgmq.%I (((message ->> ''ord'')::double precision), msg_id)',
        'q_' || set_queue_order.queue_name || '_ord_idx', 'q_' || set_queue_order.queue_name
    );
    execute format(
        'update pgmq.%I set message = message || jsonb_build_object(''ord'', extract(epoch from enqueued_at)::double precision)
         where not message ? ''ord''',
        'q_' || set_queue_order.queue_name
    );
    insert into workflow.queue_orders as o (queue_name, aging_seconds, spacing_seconds, updated_at)
    values (set_queue_order.queue_name, set_queue_order.aging_seconds, set_queue_order.spacing_seconds, clock_timestamp())
    on conflict on constraint queue_orders_pkey do update
    set aging_seconds = excluded.aging_seconds, spacing_seconds = excluded.spacing_seconds, updated_at = excluded.updated_at
    returning o.* into v_row;
    return v_row;
end;
$$;
