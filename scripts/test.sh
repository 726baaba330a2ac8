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
# Builds the server and the console (dist/console, served at / and loaded by the browser tests)
# with esbuild and vite, which do not check types; the type checker runs here instead.
npm run build --silent
npm run typecheck --silent
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
# One throwaway PostgreSQL cluster for the whole run; each test file creates its own database on it.
# The spec reporter ends with a list of the failing tests and their errors, so the tail of a CI log names them.
exec bash scripts/with-postgres.sh node --import tsx --test --test-reporter=spec --test-concurrency=2 "${files[@]}"
