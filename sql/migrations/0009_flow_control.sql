-- 0009_flow_control: concurrency limits decided inside the claim.
--
-- concurrency_limits: at most max_running tasks started and not finished at once, per scope:
--   queue  name = a queue name: all tasks of that queue, across all workers
--   flow   name = a flow slug: all tasks of that flow's runs
--   step   name = '<flow_slug>.<step_slug>': the tasks of that one step
--   key    name = a flow slug, key_path = a path into the run input: per distinct key of that
--          flow's runs (the key given at start, runs.concurrency_key, or else the text at
--          key_path in the input; a run whose input lacks the path has the key '' , so runs
--          without a key share one allowance instead of escaping the limit).
-- Written by set_concurrency_limit / remove_concurrency_limit; read by claim_tasks (a change is
-- seen by the next claim) and list_limits.
--
-- concurrency_slots: one row per task a limited claim started, under each (limit, key) it
-- counts against. A row is live while its task's status is 'started'; a completed, failed or
-- cancelled task, or a pruned one, no longer counts, whatever path ended it, so no path has to
-- free a slot: the claim counts live rows and deletes dead ones of the keys it holds. A task
-- whose lease expired (crashed or released worker) still counts until it is claimed again (it
-- keeps its row) or fails for good. No foreign key to tasks: pruning must not pay for it, and a
-- row whose task is gone is dead by the same rule.
--
-- runs.concurrency_key: the key given at start (start_flow(..., concurrency_key =>)); null
-- means "take it from the input by the key limit's path".
--
-- The start signatures that gained a parameter are dropped so that the reload creates them
-- afresh instead of adding an overload that would make every existing call ambiguous.

create table workflow.concurrency_limits (
    limit_id integer generated always as identity primary key,
    scope text not null,
    name text not null,
    max_running integer not null,
    key_path text[],
    updated_at timestamptz not null default now(),
    constraint concurrency_limit_is_unique unique (scope, name),
    constraint concurrency_scope_is_known check (scope in ('queue', 'flow', 'step', 'key')),
    constraint max_running_is_positive check (max_running >= 1),
    constraint key_path_only_on_key check ((scope = 'key') = (key_path is not null))
);

create table workflow.concurrency_slots (
    limit_id integer not null references workflow.concurrency_limits (limit_id) on delete cascade,
    key text not null,
    task_id bigint not null,
    primary key (limit_id, key, task_id)
);

alter table workflow.runs add column concurrency_key text;

drop function if exists workflow.start_flow(text, jsonb, uuid, integer, timestamptz, text);
drop function if exists workflow.start_flows(text, jsonb[], uuid[], integer, timestamptz, text);
