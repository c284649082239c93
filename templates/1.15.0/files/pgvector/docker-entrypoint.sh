#!/bin/sh
# Written by difyctl: optionally builds the pg_bigm extension
# (PGVECTOR_PG_BIGM=true), then runs the image's own entrypoint.
set -e
if [ "${PG_BIGM}" = "true" ]; then
  PG_MAJOR=16
  apt-get update
  apt-get install -y curl make gcc "postgresql-server-dev-${PG_MAJOR}"
  curl -fsSLO "https://github.com/pgbigm/pg_bigm/archive/refs/tags/v${PG_BIGM_VERSION}.tar.gz"
  tar xf "v${PG_BIGM_VERSION}.tar.gz"
  (cd "pg_bigm-${PG_BIGM_VERSION}" && make USE_PGXS=1 PG_CONFIG=/usr/bin/pg_config && make USE_PGXS=1 PG_CONFIG=/usr/bin/pg_config install)
  rm -rf "v${PG_BIGM_VERSION}.tar.gz" "pg_bigm-${PG_BIGM_VERSION}"
  conf=/var/lib/postgresql/data/pgdata/postgresql.conf
  [ -f "$conf" ] && sed -i -e "s/^#\s*shared_preload_libraries.*/shared_preload_libraries = 'pg_bigm'/" "$conf"
fi
exec /usr/local/bin/docker-entrypoint.sh postgres
