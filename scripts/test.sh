#!/usr/bin/env bash
# Run the test suite from a fresh machine: `scripts/test.sh [all|sql|python]` (default all).
#
#   all     lint (scripts/lint.sh), then pgTAP, then pytest
#   sql     pgTAP only: tests/sql/**/*.sql with pg_prove, in a throwaway database with the schema
#   python  pytest only: tests/python, which clones its own databases from a migrated template
#
# Set-up it does itself: the virtualenv (make venv); pgTAP, pg_prove, plpgsql_check and pgbouncer
# from apt when missing and running as root (else it says what is missing and exits 2); throwaway
# databases named sw_*_<random> on the server of DATABASE_URL (default: local trust-auth
# server), dropped on exit. Exit status: 0 all passed, 1 a suite failed, 2 unusable environment.
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"
cd "$REPO_ROOT"

what="${1:-all}"
case "$what" in all|sql|python) ;; *) die 2 "usage: $0 [all|sql|python]" ;; esac

start=$SECONDS
ensure_venv
ensure_psql
case "$what" in
    all) ensure_pg_tools pgtap pg_prove plpgsql_check ;;
    sql) ensure_pg_tools pgtap pg_prove ;;
    python) server_major >/dev/null ;;
esac

# pgbouncer for tests/python/test_pgbouncer.py: installed from apt like the pgTAP tools when
# running as root; otherwise that test skips and says why.
ensure_pgbouncer() {
    command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] && return
    if [ "$(id -u)" -eq 0 ]; then
        say "installing pgbouncer (for the pgbouncer test)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null || \
            say "could not install pgbouncer; its test will be skipped"
        # The package starts a system-wide instance; the test runs its own.
        service pgbouncer stop >/dev/null 2>&1 || true
    else
        say "pgbouncer is missing (sudo apt-get install -y pgbouncer); its test will be skipped"
    fi
}
case "$what" in all|python) ensure_pgbouncer ;; esac

# Chromium for tests/python/test_dashboard_browser.py (Playwright drives the system's browser;
# it never downloads one): from apt like pgbouncer when running as root; otherwise those tests
# skip and say why.
ensure_chromium() {
    command -v chromium >/dev/null && return
    if [ "$(id -u)" -eq 0 ]; then
        say "installing chromium (for the dashboard's browser tests)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || \
            say "could not install chromium; the browser tests will be skipped"
    else
        say "chromium is missing (sudo apt-get install -y chromium); the browser tests will be skipped"
    fi
}
case "$what" in all|python) ensure_chromium ;; esac

declare -A result=()
order=()
record() { order+=("$1"); result[$1]="$2"; }

run_lint() {
    if bash scripts/lint.sh; then record lint passed; else record lint FAILED; fi
}

run_pgtap() {
    if [ -z "$(find tests/sql -name '*.sql' 2>/dev/null | head -1)" ]; then
        say "pgTAP: skipped, tests/sql has no .sql files yet"
        record pgtap "skipped (no tests)"
        return
    fi
    create_throwaway_db sw_test
    local url
    url="$(db_url "$THROWAWAY_DB")"
    if ! "$VENV/bin/singularity-workflow" migrate --database-url "$url" >/dev/null; then
        record pgtap "FAILED (schema install)"
        return
    fi
    psql "$url" -X -q -v ON_ERROR_STOP=1 -c 'create extension if not exists pgtap' >/dev/null
    say "pgTAP: pg_prove --recurse tests/sql"
    # Each test file wraps itself in begin ... rollback, so they share one database safely.
    local env_lines
    env_lines="$(libpq_env "$THROWAWAY_DB")"
    if (eval "$env_lines" && pg_prove --recurse --ext .sql -S ON_ERROR_STOP=1 tests/sql); then
        record pgtap passed
    else
        record pgtap FAILED
    fi
}

run_pytest() {
    local has_tests=0 rc=0
    [ -n "$(find tests/python -name 'test_*.py' 2>/dev/null | head -1)" ] && has_tests=1
    say "pytest: tests/python"
    # tests/fixtures.py creates (and drops) its own template and per-module databases from this
    # admin connection. The slowest tests are listed at the end, so the suite's growth shows.
    SW_TEST_ADMIN_URL="$DATABASE_URL" "$VENV/bin/python" -m pytest -q --durations=15 tests/python || rc=$?
    if [ "$rc" -eq 0 ]; then
        record pytest passed
    elif [ "$rc" -eq 5 ] && [ "$has_tests" -eq 0 ]; then
        record pytest "skipped (no tests)"
    else
        record pytest "FAILED (exit $rc)"
    fi
}

case "$what" in
    all) run_lint; run_pgtap; run_pytest ;;
    sql) run_pgtap ;;
    python) run_pytest ;;
esac

status=0
parts=()
for name in "${order[@]}"; do
    parts+=("$name ${result[$name]}")
    [[ "${result[$name]}" == FAILED* ]] && status=1
done
summary="$(IFS=';'; echo "${parts[*]}")"
say "SUMMARY: ${summary//;/, } in $((SECONDS - start)) s => $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit "$status"
