-- set_step_priority: give a step's tasks a priority (default 0; higher is taken first).
--
-- Called by psql users and Client.set_step_priority. A task's priority is its step's plus its
-- run's (start_flow(..., priority =>)); it orders claims only on an ordered queue
-- (set_queue_order), and is fixed into the task's tag when the task is sent, so a change applies
-- to tasks sent after it. Priority 0 removes the row. Locks: the step_priorities row.
-- Errors: WF026 an unknown step, WF010 a priority outside -1000..1000. Safe to repeat.
create or replace function workflow.set_step_priority(
    flow_slug text,
    step_slug text,
    priority integer
)
returns void
language plpgsql
set search_path = ''
as $$
begin
    if set_step_priority.priority is null or set_step_priority.priority not between -1000 and 1000 then
        raise exception 'priority must be between -1000 and 1000, got %', coalesce(set_step_priority.priority::text, 'null')
            using errcode = 'WF010';
    end if;
    if not exists (
        select 1 from workflow.steps s
        where s.flow_slug = set_step_priority.flow_slug and s.step_slug = set_step_priority.step_slug
    ) then
        raise exception 'step %.% does not exist', set_step_priority.flow_slug, set_step_priority.step_slug
            using errcode = 'WF026';
    end if;
    if set_step_priority.priority = 0 then
        delete from workflow.step_priorities p
        where p.flow_slug = set_step_priority.flow_slug and p.step_slug = set_step_priority.step_slug;
    else
        insert into workflow.step_priorities as p (flow_slug, step_slug, priority)
        values (set_step_priority.flow_slug, set_step_priority.step_slug, set_step_priority.priority)
        on conflict on constraint step_priorities_pkey do update set priority = excluded.priority;
    end if;
end;
$$;
