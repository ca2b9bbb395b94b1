-- _worker_handles: does a worker's handlers object cover a step of a flow version?
--
-- handlers (workers.handlers, never null here: null means "anything" and callers test it first):
-- {"<flow_slug>": ["<step_slug>", ...]} serves those steps of every version of the flow (the
-- form from before versions, kept for compatibility and for psql users);
-- {"<flow_slug>": {"<shape_hash>": ["<step_slug>", ...], ...}} serves them only in the versions
-- with those hashes (workflow.flow_shape_hash of the worker's definition). A version whose hash
-- is not known yet (null: made by the 0008 upgrade and not registered since) is served only by
-- the list form.
-- Called by claim_tasks (inside its locking scan) and get_run_status (waiting_for_worker): one
-- rule, two readers. A plain SQL expression, so the planner inlines it: the claim pays two or
-- three binary-searched jsonb lookups per message, as before versions.
-- Locks nothing. Errors: none.
create or replace function workflow._worker_handles(handlers jsonb, flow_slug text, shape_hash text, step_slug text)
returns boolean
language sql
immutable
set search_path = ''
as $$
    select case jsonb_typeof(_worker_handles.handlers -> _worker_handles.flow_slug)
        when 'array' then (_worker_handles.handlers -> _worker_handles.flow_slug) ? _worker_handles.step_slug
        when 'object' then coalesce(
            (_worker_handles.handlers -> _worker_handles.flow_slug -> _worker_handles.shape_hash) ? _worker_handles.step_slug,
            false)
        else false
    end;
$$;
