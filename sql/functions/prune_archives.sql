-- prune_archives: delete one batch of archived pgmq messages older than an interval, per queue.
--
-- Archives grow without bound otherwise: channel messages acknowledged with ack_message (whose
-- history read_channel keeps showing until they are pruned) and task-queue messages archived by
-- any pgmq client (the engine itself deletes finished tasks' messages rather than archiving
-- them). For every queue in pgmq.meta, deletes up to batch_size rows of its archive table whose
-- archived_at is before now - older_than, oldest msg_id first, with one statement per queue by
-- primary key. Called by prune (same arguments) and by psql users; one call is one batch, so a
-- caller loops until it returns 0. Live (unacknowledged) messages are never touched.
-- Locks: the archive rows it deletes (nothing reads an archive for update).
-- Errors: WF010 older_than null or negative, batch_size outside 1..100000. Safe to repeat.
create or replace function workflow.prune_archives(
    older_than interval,
    batch_size integer default 1000,
    now timestamptz default clock_timestamp()
)
returns integer
language plpgsql
set search_path = ''
as $$
declare
    v_queue text;
    v_count integer;
    v_total integer := 0;
begin
    -- GUARD: arguments
    if prune_archives.older_than is null or prune_archives.older_than < interval '0' then
        raise exception 'older_than must be a non-negative interval, got %',
            coalesce(prune_archives.older_than::text, 'null') using errcode = 'WF010';
    end if;
    if prune_archives.batch_size is null or prune_archives.batch_size not between 1 and 100000 then
        raise exception 'batch_size must be between 1 and 100000, got %',
            coalesce(prune_archives.batch_size::text, 'null') using errcode = 'WF010';
    end if;

    -- PHASE 1: each queue's archive, through its archived_at index; queue names come from
    -- pgmq.meta and reach the SQL only through format('%I')
    for v_queue in select m.queue_name from pgmq.meta m order by m.queue_name loop
        if pg_catalog.to_regclass(format('pgmq.%I', 'a_' || v_queue)) is null then
            continue;
        end if;
        execute format($sql$
            delete from pgmq.%1$I a where a.msg_id in (
                select b.msg_id from pgmq.%1$I b where b.archived_at < $1 order by b.msg_id limit $2)
        $sql$, 'a_' || v_queue)
        using prune_archives.now - prune_archives.older_than, prune_archives.batch_size;
        get diagnostics v_count = row_count;
        v_total := v_total + v_count;
    end loop;
    return v_total;
end;
$$;
