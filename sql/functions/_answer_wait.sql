-- _answer_wait: the body of approve and reject: send a wait step of one run its decision.
--
-- Called by approve (approved true) and reject (approved false). The payload, which becomes
-- the wait step's output, is {"approved", "by", "comment", "at"}; it goes to that step only
-- (_send_event with the step as target), under the step's own event name and key, so a wait
-- step that has not started yet finds it kept when it does (for keep, default one day).
-- Locks: the run row FOR KEY SHARE while it checks (a share lock: it only keeps the run from
-- being deleted), then those of _send_event.
-- Errors: WF011 unknown run; WF034 the step is not a wait step of the run's flow version (or
-- does not exist); WF035 the step is not waiting any more (completed, failed, skipped) or the
-- run has ended. Nothing changes on an error. A second approve of a step that completed is
-- WF035, so a double click cannot decide twice.
create or replace function workflow._answer_wait(
    run_id uuid,
    step_slug text,
    approved boolean,
    decided_by text,
    comment text,
    now timestamptz
)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
    v_run record;
    v_control jsonb;
    v_type text;
    v_step_status text;
    v_key text;
begin
    select r.run_id, r.status, r.version_id, r.input into v_run
    from workflow.runs r where r.run_id = _answer_wait.run_id
    for key share;
    if not found then
        raise exception 'run % does not exist', _answer_wait.run_id using errcode = 'WF011';
    end if;
    select st.step_type, st.control into v_type, v_control
    from workflow.steps st where st.version_id = v_run.version_id and st.step_slug = _answer_wait.step_slug;
    if v_type is distinct from 'wait' then
        raise exception 'step % of run % is not a wait step', coalesce(_answer_wait.step_slug, 'null'), _answer_wait.run_id
            using errcode = 'WF034', hint = 'approve and reject answer a step declared with wait_for; get_run_status lists the steps.';
    end if;
    select s.status into v_step_status
    from workflow.step_states s where s.run_id = _answer_wait.run_id and s.step_slug = _answer_wait.step_slug;
    v_key := workflow._wait_key(v_control, v_run.run_id, v_run.input);
    if v_run.status not in ('started', 'scheduled') or v_step_status not in ('created', 'started') or v_key is null then
        raise exception 'step % of run % is not waiting (step %, run %)', _answer_wait.step_slug, _answer_wait.run_id,
            coalesce(v_step_status, 'none'), v_run.status
            using errcode = 'WF035', hint = 'Only a wait step that has not completed, in a live run, can be answered.';
    end if;
    return workflow._send_event(
        v_control ->> 'wait_for', v_key,
        jsonb_build_object('approved', _answer_wait.approved, 'by', _answer_wait.decided_by,
                           'comment', _answer_wait.comment, 'at', _answer_wait.now),
        make_interval(secs => (workflow.definition_rules() #>> '{control,default_keep_seconds}')::integer),
        _answer_wait.now,
        _answer_wait.run_id, _answer_wait.step_slug
    );
end;
$$;
