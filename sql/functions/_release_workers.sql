-- _release_workers: make the tasks held by the given (dead or stopped) workers claimable now.
--
-- Called by deregister_worker and _sweep. For every queue the engine's steps use (and 'local'),
-- the messages still leased (vt in the future, not parked) whose task is 'started' with one of
-- these worker ids get vt = now: the next claim takes them as the next attempt, or fails the
-- task when its attempts are spent, exactly as after a lease expiry. Queue tables hold only live
-- messages, so this reads little and needs no index on tasks.worker_id (which would make every
-- claim's update of the task a non-HOT one). Sends one pg_notify per queue that got work back.
-- Locks: the released messages' rows (a message being extended or completed by a zombie of the
-- worker is waited for briefly; claimers never hold a leased message). Returns the number of
-- tasks released. Errors: none. Safe to repeat (a released message is no longer leased).
create or replace function workflow._release_workers(worker_ids text[], now timestamptz)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_queue text;
    v_count integer;
    v_total integer := 0;
begin
    if coalesce(cardinality(_release_workers.worker_ids), 0) = 0 then
        return 0;
    end if;
    for v_queue in
        select q.queue_name
        from (select distinct s.queue_name from workflow.steps s union select 'local') as q
        join pgmq.meta m on m.queue_name = q.queue_name
        order by q.queue_name
    loop
        execute format($sql$
            update pgmq.%1$I as q
            set vt = $1
            from workflow.tasks as t
            where q.vt > $1 and q.vt < 'infinity'
              and t.task_id = (q.message ->> 'task_id')::bigint
              and t.status = 'started' and t.worker_id = any ($2)
        $sql$, 'q_' || v_queue)
        using _release_workers.now, _release_workers.worker_ids;
        get diagnostics v_count = row_count;
        if v_count > 0 then
            perform pg_notify('workflow_q_' || v_queue, '');
            v_total := v_total + v_count;
        end if;
    end loop;
    return v_total;
end;
$$;
