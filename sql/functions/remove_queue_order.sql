-- remove_queue_order: claims of the queue go back to oldest message first.
--
-- Called by psql users, the CLI and Client.remove_queue_order. Drops the queue's row (and its
-- keys' clocks) and the tag index; the tags stay in the messages, unused. Returns true when the
-- queue was ordered. Locks: the queue_orders row; dropping the index locks the queue's table
-- briefly. Errors: WF001 a malformed queue name. Safe to repeat.
create or replace function workflow.remove_queue_order(
    queue_name text
)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
    perform workflow._validate_name('queue', remove_queue_order.queue_name);
    delete from workflow.queue_orders o where o.queue_name = remove_queue_order.queue_name;
    if not found then
        return false;
    end if;
    execute format('drop index if exists pgmq.%I', 'q_' || remove_queue_order.queue_name || '_ord_idx');
    return true;
end;
$$;
