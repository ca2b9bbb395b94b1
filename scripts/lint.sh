#!/usr/bin/env bash
# Lint everything: ruff, mypy and the layering contract (scripts/check_layers.py) over the Python,
# sqlfluff over sql/, and plpgsql_check over every PL/pgSQL function of schema `workflow` in a
# freshly installed throwaway database.
#
# Why two SQL linters: sqlfluff reads the statements of the files but sees a function body as one
# dollar-quoted string; plpgsql_check compiles each installed body against the real tables and
# reports unknown columns, type mismatches and dead code that only show up when a branch runs.
#
# Every check runs even after one fails, so one run shows all problems; exit 1 if any failed,
# 2 if the environment is not usable (see scripts/_lib.sh).
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
cd "$REPO_ROOT"

ensure_venv
ensure_psql
ensure_pg_tools plpgsql_check

failed=()
run_check() {
    local name="$1"; shift
    say "lint: $name"
    if ! "$@"; then failed+=("$name"); fi
}

# One config for both trees: tests/python has no pyproject.toml of its own.
run_check ruff "$VENV/bin/ruff" check --config python/pyproject.toml python tests/python
run_check mypy "$VENV/bin/mypy" --config-file python/pyproject.toml python/singularity_workflow python/hatch_build.py
# The layering contract: imports point down the Python layers, no module imports another's
# private name, nothing imports the CLI (docs/architecture.md, "Python layers").
run_check layers "$VENV/bin/python" scripts/check_layers.py
if [ -n "$(find sql -name '*.sql' 2>/dev/null | head -1)" ]; then
    run_check sqlfluff "$VENV/bin/sqlfluff" lint sql --disable-progress-bar
else
    say "lint: sqlfluff skipped (no .sql files under sql/ yet)"
fi

plpgsql_check() {
    create_throwaway_db sw_lint
    local url
    url="$(db_url "$THROWAWAY_DB")"
    "$VENV/bin/singularity-workflow" migrate --database-url "$url" >/dev/null || return 1
    # One row per finding. A trigger function is checked against each table that uses it (it
    # needs a relation to resolve NEW/OLD); one that no trigger uses cannot be checked and is
    # listed as such. fatal_errors := false reports every error, not just the first.
    psql "$url" -X -q -v ON_ERROR_STOP=1 -At -F ' | ' <<'SQL' > "$REPO_ROOT/build/plpgsql_check.txt"
create extension if not exists plpgsql_check;
with functions as (
    select p.oid, p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype as is_trigger
    from pg_catalog.pg_proc as p
    join pg_catalog.pg_namespace as n on n.oid = p.pronamespace
    join pg_catalog.pg_language as l on l.oid = p.prolang
    where n.nspname = 'workflow' and l.lanname = 'plpgsql'
),
targets as (
    select f.oid, 0::oid as relid from functions as f where not f.is_trigger
    union all
    select f.oid, t.tgrelid from functions as f join pg_catalog.pg_trigger as t on t.tgfoid = f.oid
)
select r.level, t.oid::regprocedure, coalesce(r.lineno::text, '-'), r.sqlstate, r.message,
       coalesce(r.hint, '')
from targets as t
cross join lateral plpgsql_check_function_tb(t.oid, t.relid, fatal_errors := false) as r
union all
select 'unchecked', f.oid::regprocedure, '-', '', 'trigger function used by no trigger', ''
from functions as f
where f.is_trigger and not exists (select 1 from pg_catalog.pg_trigger as t where t.tgfoid = f.oid)
order by 1, 2, 3;
SQL
    local report="$REPO_ROOT/build/plpgsql_check.txt" checked
    checked="$(psql "$url" -X -Atc "select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang where n.nspname = 'workflow' and l.lanname = 'plpgsql'")"
    if [ -s "$report" ]; then sed 's/^/  /' "$report" >&2; fi
    say "plpgsql_check: $checked function(s) checked, $(grep -c '^error' "$report" || true) error(s), $(grep -vc '^error' "$report" || true) other finding(s)"
    ! grep -q '^error' "$report"
}
mkdir -p build
run_check plpgsql_check plpgsql_check

if [ "${#failed[@]}" -ne 0 ]; then
    say "lint FAILED: ${failed[*]}"
    exit 1
fi
say "lint passed"
