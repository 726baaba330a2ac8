#!/usr/bin/env bash
# The whole test suite: unit, property, integration (real PostgreSQL, DuckDB, HTTP) and CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
bash scripts/ensure-postgres.sh
# The console's browser tests (test/console) drive Debian's chromium.
bash scripts/ensure-chromium.sh
# The docs' examples (run by test/docs) use jq.
bash scripts/ensure-jq.sh
# Builds the server and the console (dist/console, served at / and loaded by the browser tests).
npm run build --silent
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
# One throwaway PostgreSQL cluster for the whole run; each test file creates its own database on it.
exec bash scripts/with-postgres.sh node --import tsx --test --test-concurrency=2 "${files[@]}"
