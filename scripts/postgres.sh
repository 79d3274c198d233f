# Sourced by scripts/dev and scripts/test: makes sure a Postgres answers and exports
# DATABASE_URL (a server URL whose user may create databases).
#
# 1. DATABASE_URL already set: used as it is.
# 2. A Postgres on 127.0.0.1:5432 that lets user postgres in without a password: used.
# 3. Otherwise a private cluster (trust auth, port 54329, data in $FLEETGATE_PGDATA) is
#    started, installing Debian's postgresql package first when run as root without it.

FLEETGATE_PG_PORT="${FLEETGATE_PG_PORT:-54329}"
FLEETGATE_PGDATA="${FLEETGATE_PGDATA:-/tmp/fleetgate-pgdata}"

pg_log() { echo "[postgres] $*" >&2; }

pg_answers() { # url
  if command -v psql >/dev/null 2>&1; then
    psql "$1" -Atqc 'select 1' >/dev/null 2>&1
  else
    local hostport="${1#*@}"; hostport="${hostport%%/*}"
    (exec 3<>"/dev/tcp/${hostport%%:*}/${hostport##*:}") 2>/dev/null
  fi
}

pg_bindir() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

pg_install() {
  if [ -n "$(pg_bindir)" ]; then return 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    pg_log "no Postgres found and cannot install one (needs root and apt-get); set DATABASE_URL"
    return 1
  fi
  pg_log "installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null
}

pg_start_private() {
  pg_install || return 1
  local bin; bin="$(pg_bindir)"
  local run=()
  case "$FLEETGATE_PGDATA" in /*) ;; *) FLEETGATE_PGDATA="$PWD/$FLEETGATE_PGDATA" ;; esac
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    # From / : the postgres user may not enter the clone's folder ("could not change directory").
    run=(env -C / runuser -u postgres --)
  fi
  if [ ! -s "$FLEETGATE_PGDATA/PG_VERSION" ]; then
    pg_log "creating a private cluster in $FLEETGATE_PGDATA"
    mkdir -p "$FLEETGATE_PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres: "$FLEETGATE_PGDATA"
    "${run[@]}" "$bin/initdb" -D "$FLEETGATE_PGDATA" -U postgres -A trust -E UTF8 >/dev/null
  fi
  pg_log "starting the private cluster on 127.0.0.1:$FLEETGATE_PG_PORT"
  "${run[@]}" "$bin/pg_ctl" -D "$FLEETGATE_PGDATA" -l "$FLEETGATE_PGDATA/server.log" -w \
    -o "-p $FLEETGATE_PG_PORT -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=300" start >/dev/null
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    pg_answers "$DATABASE_URL" || { pg_log "DATABASE_URL is set but does not answer"; return 1; }
    return 0
  fi
  local system="postgres://postgres@127.0.0.1:5432/postgres"
  local private="postgres://postgres@127.0.0.1:$FLEETGATE_PG_PORT/postgres"
  if pg_answers "$system"; then
    export DATABASE_URL="$system"
  elif pg_answers "$private"; then
    export DATABASE_URL="$private"
  else
    pg_start_private || return 1
    export DATABASE_URL="$private"
  fi
  pg_log "using $DATABASE_URL"
}
