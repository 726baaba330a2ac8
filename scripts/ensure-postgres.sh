#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb, pg_ctl) exist, for the store
# tests. Idempotent and instant when they are already installed. CI runs as
# root on Debian 12; elsewhere, install PostgreSQL yourself or set
# STEWARD_TEST_DATABASE_URL to a server the tests may create databases on.
set -euo pipefail

if [ -n "${STEWARD_TEST_DATABASE_URL:-}" ]; then
  exit 0
fi
if compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" ensure-postgres postgresql
# The Debian package starts a cluster of its own; the tests never use it.
if command -v pg_ctlcluster > /dev/null; then
  for conf in /etc/postgresql/*/main; do
    [ -d "$conf" ] || continue
    ver=$(basename "$(dirname "$conf")")
    pg_ctlcluster "$ver" main stop > /dev/null 2>&1 || true
  done
fi
compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null
