-- _declare_step_priorities: store the priorities a flow definition names on its steps.
--
-- Called by register_flow_version on every registration, a known shape included (a priority is
-- not part of the shape: see flow_shape_hash). A step whose description has "priority" gets it,
-- where set_step_priority keeps it (0 removes the row); a step that names none keeps what it has,
-- so a definition without priorities never undoes a set_step_priority made at run time. As with
-- set_step_priority, the priority applies to tasks sent after it, of every version of the flow.
-- The definition's steps must have been validated (_normalize_step, through flow_shape_hash).
-- Locks: the step_priorities rows it changes; a row that already holds the value is not written.
-- Raises nothing of its own. Safe to repeat.
create or replace function workflow._declare_step_priorities(flow_slug text, definition jsonb)
returns void
language sql
set search_path = ''
as $$
    with declared as (
        select s.step ->> 'slug' as step_slug, (s.step ->> 'priority')::integer as priority
        from jsonb_array_elements(_declare_step_priorities.definition -> 'steps') as s (step)
        where s.step ? 'priority'
    ),
    removed as (
        delete from workflow.step_priorities as p
        using declared as d
        where p.flow_slug = _declare_step_priorities.flow_slug and p.step_slug = d.step_slug and d.priority = 0
        returning 1
    )
    insert into workflow.step_priorities as p (flow_slug, step_slug, priority)
    select _declare_step_priorities.flow_slug, d.step_slug, d.priority
    from declared as d
    where d.priority <> 0
    on conflict on constraint step_priorities_pkey do update set priority = excluded.priority
    where p.priority is distinct from excluded.priority;
$$;
