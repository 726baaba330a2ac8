#!/usr/bin/env bash
# apt-install.sh WHO PACKAGE...: installs Debian packages the tests need, from
# the distribution's archive only. Needs root (CI runs as root on Debian 12);
# elsewhere it says what to install and fails.
set -euo pipefail

who=$1
shift
if [ "$(id -u)" -ne 0 ]; then
  echo "$who: missing and not root; install $* yourself" >&2
  exit 1
fi
echo "$who: installing $* (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "$@" > /dev/null
