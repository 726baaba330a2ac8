#!/usr/bin/env bash
# Makes sure jq exists: the docs' examples use it to pick ids out of `--json`
# output, and test/docs/commands.test.ts runs those examples as written.
# Idempotent and instant when jq is installed.
set -euo pipefail

command -v jq > /dev/null && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-jq: jq is missing and this is not root; install jq" >&2
  exit 1
fi
echo "ensure-jq: installing jq (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends jq > /dev/null
command -v jq > /dev/null
