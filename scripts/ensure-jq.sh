#!/usr/bin/env bash
# Makes sure jq exists: the docs' examples use it to pick ids out of `--json`
# output, and test/docs/commands.test.ts runs those examples as written.
# Idempotent and instant when jq is installed.
set -euo pipefail

command -v jq > /dev/null && exit 0
bash "$(dirname "$0")/apt-install.sh" ensure-jq jq
command -v jq > /dev/null
