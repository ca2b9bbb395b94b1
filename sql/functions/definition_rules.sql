-- definition_rules: the rules a definition must follow, as one JSON object.
--
-- The single source of the naming and step-option rules: _validate_name reads its patterns,
-- reserved names and prefixes from here, _normalize_step its option names, kinds, defaults and
-- minimums, _emit_events its event -> run status map. Clients that check definitions before the
-- database (the Python package) are tested against this object, so their copies cannot drift
-- (tests/python/test_rules_match_sql.py); the name CHECK constraints of migration 0001 are
-- tested against it too (tests/sql/definition_rules).
-- Shape:
--   names           {kind: {"pattern", "max_length", "reserved": [names], "reserved_prefixes"}}
--                   for kinds flow, step, queue, channel and resource
--   step_options    every key a step description may carry
--   step_types, executions   the allowed values of type and execution
--   step_defaults   the value of every omitted option, queue excepted (it depends on execution)
--   default_queues  {execution: queue} for a step that names no queue
--   step_minimums   the least value of each integer option; integer_max the greatest
--   priority_range  the least and greatest step priority (the option has no default: a step
--                   that names none keeps the priority it has, see register_flow_version)
--   event_statuses  {event: run status it leaves} for the run events (step events: absent)
--   control         the control-flow options (docs/control-flow.md): "options" (their names: a
--                   step carries them only when given, so they have no defaults), "event_name" (the pattern
--                   of a wait_for event name), "event_key" (the pattern of a wait step's key:
--                   run_id or input.<field>[.<field>...]), "path" (the pattern of a sleep path:
--                   input.<field>... or <step>.<field>...), "max_payload_bytes" of an event,
--                   "default_keep_seconds" (how long send_event keeps an event nobody waits for)
--   run_states      the states run_state returns
-- Called by psql users, clients and the functions above (an immutable call without arguments,
-- folded to a constant when their statements are planned). Locks nothing; raises nothing.
create or replace function workflow.definition_rules()
returns jsonb
language sql
immutable
parallel safe
set search_path = ''
as $$
    select '{
        "names": {
            "flow": {"pattern": "^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$", "max_length": 128,
                     "reserved": [], "reserved_prefixes": []},
            "step": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$", "max_length": 63,
                     "reserved": ["run"], "reserved_prefixes": []},
            "queue": {"pattern": "^[a-z_][a-z0-9_]{0,46}$", "max_length": 47,
                      "reserved": [], "reserved_prefixes": []},
            "channel": {"pattern": "^[a-z_][a-z0-9_]{0,41}$", "max_length": 42,
                        "reserved": [], "reserved_prefixes": ["workflow_q_", "workflow_run_"]},
            "resource": {"pattern": "^[A-Za-z_][A-Za-z0-9_.-]{0,62}$", "max_length": 63,
                         "reserved": [], "reserved_prefixes": []}
        },
        "step_options": ["slug", "depends_on", "type", "map_over", "execution", "queue",
                         "max_attempts", "base_delay", "timeout", "start_delay", "resources", "priority",
                         "wait_for", "event_key", "wait_timeout", "sleep", "condition", "run_if_skipped"],
        "step_types": ["single", "map", "wait"],
        "executions": ["local", "distributed"],
        "step_defaults": {"depends_on": [], "type": "single", "map_over": null, "execution": "local",
                          "resources": [], "max_attempts": 3, "base_delay": 1, "timeout": 60,
                          "start_delay": 0},
        "default_queues": {"local": "local", "distributed": "default"},
        "step_minimums": {"max_attempts": 1, "base_delay": 0, "timeout": 1, "start_delay": 0},
        "integer_max": 2147483647,
        "priority_range": [-1000, 1000],
        "event_statuses": {"run_started": "started", "run_resumed": "started",
                           "run_completed": "completed", "run_failed": "failed",
                           "run_cancelled": "failed", "run_paused": "paused"},
        "run_states": ["running", "paused", "completed", "failed", "cancelled"],
        "control": {"options": ["wait_for", "event_key", "wait_timeout", "sleep", "condition", "run_if_skipped"],
                    "event_name": "^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$",
                    "event_key": "^(run_id|input(\\.[A-Za-z_][A-Za-z0-9_]{0,62}){1,8})$",
                    "path": "^[A-Za-z_][A-Za-z0-9_]{0,62}(\\.[A-Za-z_][A-Za-z0-9_]{0,62}){0,8}$",
                    "max_payload_bytes": 1048576, "max_key_length": 200,
                    "default_keep_seconds": 86400}
    }'::jsonb
$$;
