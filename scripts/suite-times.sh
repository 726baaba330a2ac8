#!/usr/bin/env bash
# Times test files one at a time, to find the ones that make `npm test` slow.
# Each file runs alone (as `npm test` would run it, but with nothing beside it),
# and the table printed at the end, slowest first, gives per file: wall seconds,
# CPU seconds (user + system, the file's child processes included: the CLI
# binary, servers, Chromium; not a detached background server), and ok/FAIL. On the 2-core CI machine the suite
# runs two files at a time, so CPU seconds are what a file costs everyone else.
#
#   bash scripts/suite-times.sh test/cli test/docs/commands.test.ts
#   bash scripts/suite-times.sh            # every test file: ~15 minutes, mind the shared machine
#
# Run `npm run build` first: CLI and console tests use dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--inner" ]; then
  shift
  TIMEFORMAT='%R %U %S'
  for f in "$@"; do
    log=$(mktemp)
    status=ok
    # bash's `time` reports the command's own and its waited-for children's CPU.
    t=$({ time node --import tsx --test --test-reporter=dot --test-concurrency=1 "$f" > "$log" 2>&1 || echo FAIL > "$log.failed"; } 2>&1)
    [ -e "$log.failed" ] && status=FAIL
    rm -f "$log" "$log.failed"
    read -r real user sys <<< "$t"
    line=$(awk -v r="$real" -v u="$user" -v s="$sys" -v st="$status" -v f="$f" 'BEGIN { printf "%8.1f %8.1f  %-4s %s", r, u + s, st, f }')
    echo "$line" >&2
    echo "$line"
  done
  exit 0
fi

[ $# -gt 0 ] || set -- src test
mapfile -t files < <(find "$@" -name '*.test.ts' -not -path '*/node_modules/*' | sort)
[ ${#files[@]} -gt 0 ] || { echo "suite-times: no *.test.ts under $*" >&2; exit 2; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "timing ${#files[@]} file(s), one at a time (progress on stderr)" >&2
# One throwaway PostgreSQL cluster for all of them, as in npm test.
bash scripts/with-postgres.sh bash "$0" --inner "${files[@]}" > "$out"
printf '%8s %8s  %-4s %s\n' 'wall s' 'cpu s' '' 'file'
sort -rn "$out"
awk '{ w += $1; c += $2 } END { printf "%8.1f %8.1f        total (%d files)\n", w, c, NR }' "$out"
