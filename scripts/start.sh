#!/usr/bin/env bash
# Installs Steward, creates the demo workspace on embedded defaults, and serves it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm install --no-audit --no-fund
npm run build --silent
node bin/steward.js demo
exec node bin/steward.js serve "$@"
