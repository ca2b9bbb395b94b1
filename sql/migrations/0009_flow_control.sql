-- 0009_flow_control: concurrency and rate limits decided inside the claim.
--
-- limits: kind 'concurrency': at most max_count tasks started and not finished at once; kind
-- 'rate': at most max_count task starts in any window of per_seconds (a sliding window). Per
-- scope:
--   queue  name = a queue name: all tasks of that queue, across all workers
--   flow   name = a flow slug: all tasks of that flow's runs
--   step   name = '<flow_slug>.<step_slug>': the tasks of that one step
--   key    name = a flow slug, key_path = a path into the run input: per distinct key of that
--          flow's runs (the key given at start, runs.concurrency_key, or else the text at
--          key_path in the input; a run whose input lacks the path has the key '' , so runs
--          without a key share one allowance instead of escaping the limit).
-- Written by set_concurrency_limit / set_rate_limit / remove_limit; read by claim_tasks (a
-- change is seen by the next claim) and list_limits.
--
-- concurrency_slots: one row per task a claim started under a concurrency limit, under each
-- (limit, key) it counts against. A row is live while its task's status is 'started'; a completed, failed or
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

create table workflow.limits (
    limit_id integer generated always as identity primary key,
    kind text not null,
    scope text not null,
    name text not null,
    -- concurrency: tasks started and not finished at once; rate: task starts per per_seconds.
    max_count integer not null,
    per_seconds numeric,
    key_path text[],
    updated_at timestamptz not null default now(),
    constraint limit_is_unique unique (kind, scope, name),
    constraint limit_kind_is_known check (kind in ('concurrency', 'rate')),
    constraint limit_scope_is_known check (scope in ('queue', 'flow', 'step', 'key')),
    constraint max_count_is_positive check (max_count >= 1),
    constraint per_seconds_only_on_rate check ((kind = 'rate') = (per_seconds is not null)),
    constraint per_seconds_is_positive check (per_seconds is null or per_seconds > 0),
    constraint rate_window_is_bounded check (kind <> 'rate' or max_count <= 10000),
    constraint key_path_only_on_key check ((scope = 'key') = (key_path is not null))
);

create table workflow.concurrency_slots (
    limit_id integer not null references workflow.limits (limit_id) on delete cascade,
    key text not null,
    task_id bigint not null,
    primary key (limit_id, key, task_id)
);

-- rate_windows: per (rate limit, key), the start times of the task starts inside the current
-- window (at most max_count of them, oldest first): a sliding log, written only by a claim that
-- holds the (limit, key) lock.
create table workflow.rate_windows (
    limit_id integer not null references workflow.limits (limit_id) on delete cascade,
    key text not null,
    starts timestamptz[] not null,
    primary key (limit_id, key)
);

alter table workflow.runs add column concurrency_key text;

-- Ordered queues (set_queue_order): their messages carry an ordering tag, message ->> 'ord'
-- (seconds, as a double), and claim_tasks takes them lowest tag first instead of by msg_id,
-- through an index on the tag made on the queue's table when ordering is turned on. The tag
-- (written by _order_messages when the task is sent) gives priorities with aging and fairness
-- across keys; the rule and its numbers are in docs/operations.md, "Priorities and fairness".
-- queue_orders: one row per ordered queue and its two constants. fair_clocks: per (queue, key),
-- the next tag the key's next task gets at the earliest (its share of the queue's virtual time).
-- step_priorities: a step's priority (set_step_priority), added to its run's (runs.priority,
-- start_flow(..., priority =>)).
create table workflow.queue_orders (
    queue_name text primary key,
    aging_seconds numeric not null default 60,
    spacing_seconds numeric not null default 1,
    updated_at timestamptz not null default now(),
    constraint aging_is_positive check (aging_seconds > 0),
    constraint spacing_is_positive check (spacing_seconds > 0)
);

create table workflow.fair_clocks (
    queue_name text not null references workflow.queue_orders (queue_name) on delete cascade,
    key text not null,
    clock double precision not null,
    primary key (queue_name, key)
);

create table workflow.step_priorities (
    flow_slug text not null,
    step_slug text not null,
    priority integer not null,
    -- No foreign key to steps: set_step_priority checks the step, and a stale row is harmless.
    primary key (flow_slug, step_slug)
);

alter table workflow.runs add column priority integer not null default 0;

drop function if exists workflow.start_flow(text, jsonb, uuid, integer, timestamptz, text);
drop function if exists workflow.start_flows(text, jsonb[], uuid[], integer, timestamptz, text);
