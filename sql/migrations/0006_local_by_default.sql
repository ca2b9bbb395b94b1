-- 0006_local_by_default: a step runs locally unless told otherwise, in SQL as in Python.
--
-- Until now the steps table and _normalize_step defaulted `execution` to 'distributed' while the
-- Python package (and the Elixir library's examples) defaulted to 'local', so the same flow built
-- from psql and from Python differed. The default is now 'local' everywhere: the simplest
-- workflow runs in the process that executes it, without a worker. _normalize_step fills in the
-- default for every step it stores, so this column default only matters for rows inserted by
-- hand; it changes to match. The queue column keeps its default 'default': _normalize_step
-- always writes the queue ('local' for a local step), and a distributed step still lands on
-- queue 'default' when it names none. Existing steps keep what they were stored with.

alter table workflow.steps alter column execution set default 'local';
