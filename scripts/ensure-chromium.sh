#!/usr/bin/env bash
# Makes sure Debian's chromium exists at /usr/bin/chromium, for the console's
# browser tests (test/console, driven by playwright-core). Idempotent and
# instant when it is already installed. CI runs as root on Debian 12; elsewhere,
# install chromium yourself or set STEWARD_CHROMIUM to a Chromium binary.
# Never downloads a browser from anywhere but the distribution's archive.
set -euo pipefail

if [ -n "${STEWARD_CHROMIUM:-}" ]; then
  [ -x "$STEWARD_CHROMIUM" ] && exit 0
  echo "ensure-chromium: STEWARD_CHROMIUM=$STEWARD_CHROMIUM is not an executable" >&2
  exit 1
fi
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
bash "$(dirname "$0")/apt-install.sh" ensure-chromium chromium fonts-dejavu-core
[ -x /usr/bin/chromium ]
