-- _order_messages: give the messages of tasks just sent to an ordered queue their ordering tag.
--
-- Called by _start_steps after each send to a queue that has a queue_orders row (set_queue_order);
-- task_ids are the tasks of that send, their message_id already set. For each task:
--   tag = base(key) + (rank of the task among this send's tasks of its key - 1) * spacing
--         - (run priority + step priority) * aging
--   base(key) = max(now, lowest tag in the queue, the key's clock)
-- and the key's clock moves to base + (its tasks in this send) * spacing. The key is the run's
-- concurrency_key, else its input at the key path of the flow's first key limit, else ''.
-- The lowest tag in the queue is the point the claims have reached: a key that was idle starts
-- there, not behind the backlog of busy keys and not ahead of it by more than its own share.
-- Writes: the key clocks (insert or update: a concurrent send of the same key waits on the row
-- until this transaction ends), the messages' JSON. Errors: none. Not for repeated calls: a
-- second call on the same tasks moves their keys' clocks again.
-- The planner settings of the hot path are not pinned here: the statement joins the send's tasks
-- with its distinct keys, a hash join's job (a map of 10,000 items over 10,000 keys would be
-- 10^8 probes in a nested loop).
create or replace function workflow._order_messages(
    queue_name text,
    task_ids bigint[],
    now timestamptz
)
returns void
language plpgsql
set search_path = ''
as $$
declare
    v_order workflow.queue_orders;
    v_head double precision;
begin
    select o.* into v_order from workflow.queue_orders o where o.queue_name = _order_messages.queue_name;
    if not found then
        return;
    end if;
    execute format(
        'select (q.message ->> ''ord'')::double precision from pgmq.%I as q
         where (q.message ->> ''ord'')::double precision is not null
         order by (q.message ->> ''ord'')::double precision limit 1',
        'q_' || _order_messages.queue_name
    ) into v_head;
    execute format($sql$
        with k as materialized (
            select t.task_id, t.message_id,
                coalesce(r.concurrency_key, r.input #>> (
                    select l.key_path from workflow.limits as l
                    where l.scope = 'key' and l.name = r.flow_slug order by l.limit_id limit 1
                ), '') as key,
                r.priority + coalesce(sp.priority, 0) as priority
            from unnest($1::bigint[]) as x (task_id)
            join workflow.tasks as t on t.task_id = x.task_id
            join workflow.runs as r on r.run_id = t.run_id
            left join workflow.step_priorities as sp on sp.flow_slug = r.flow_slug and sp.step_slug = t.step_slug
            where t.message_id is not null
        ),
        n as materialized (
            select k.key, count(*) as n from k group by k.key
        ),
        up as (
            insert into workflow.fair_clocks as fc (queue_name, key, clock)
            select $2, n.key, $3 + n.n * $4 from n
            on conflict on constraint fair_clocks_pkey do update
            set clock = greatest(fc.clock + (excluded.clock - $3), excluded.clock)
            returning fc.key, fc.clock
        ),
        o as (
            select k.message_id,
                up.clock - n.n * $4 + (row_number() over (partition by k.key order by k.task_id) - 1) * $4
                    - k.priority * $5 as ord
            from k
            join n on n.key = k.key
            join up on up.key = k.key
        )
        update pgmq.%1$I as q
        set message = q.message || jsonb_build_object('ord', o.ord)
        from o
        where q.msg_id = o.message_id
    $sql$, 'q_' || _order_messages.queue_name)
    using _order_messages.task_ids, _order_messages.queue_name,
        greatest(extract(epoch from _order_messages.now)::double precision, coalesce(v_head, '-infinity')),
        v_order.spacing_seconds::double precision, v_order.aging_seconds::double precision;
end;
$$;
