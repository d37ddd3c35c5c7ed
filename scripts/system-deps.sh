#!/usr/bin/env bash
# Installs the system packages the test suite needs when they are missing:
# Debian's PostgreSQL server (throwaway test server), Prometheus (promtool
# and a real scrape) and Chromium (the web viewer's browser tests, driven by
# Playwright through /usr/bin/chromium: no browser is ever downloaded). Runs as root (or with passwordless sudo) on CI and fresh
# machines; elsewhere it only reports what is missing, and the tests that need
# it skip with a message (except under CI=true, where they must run, so this
# script fails when it cannot install them).
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
# Root installs directly; another user through passwordless sudo if it has it.
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  elif [ "${CI:-}" = "true" ]; then
    echo "system-deps: missing ${missing[*]}, and cannot install them (not root, no sudo)" >&2
    exit 1
  else
    echo "system-deps: missing ${missing[*]} (not root, not installing)" >&2
    exit 0
  fi
fi
echo "system-deps: installing ${missing[*]}" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
# Package scripts must not start system services: the tests start their own.
"${as_root[@]}" sh -c "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d"
trap '"${as_root[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# What the tests will look for, checked rather than assumed.
command -v promtool >/dev/null 2>&1 || { echo "system-deps: promtool still missing" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "system-deps: initdb still missing" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "system-deps: /usr/bin/chromium still missing" >&2; exit 1; }
