#!/bin/sh
# First start: initdb into $PGDATA (superuser `postgres`, local peer login only), then a role
# and a database named $POSTGRES_USER (password $POSTGRES_PASSWORD, scram-sha-256 from the
# compose network); a half-done first start is redone. Then postgres runs in the foreground.
set -eu
: "${POSTGRES_USER:=ferry}"
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
marker="$PGDATA/.ferry-initialised"
if [ ! -f "$marker" ]; then
  find "$PGDATA" -mindepth 1 -delete
  initdb --username=postgres --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 -D "$PGDATA" >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  psql -v ON_ERROR_STOP=1 -v role="$POSTGRES_USER" -v password="$POSTGRES_PASSWORD" \
    --username=postgres -d postgres >/dev/null <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
SQL
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  touch "$marker"
  echo "postgres-start: initialised $PGDATA (role and database $POSTGRES_USER)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*'
