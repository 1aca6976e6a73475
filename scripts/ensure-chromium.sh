#!/usr/bin/env bash
# Make sure Debian's Chromium is at /usr/bin/chromium for the browser tests (tests/e2e).
# Idempotent and quiet: installs the `chromium` package only when it is missing, apt-get
# is there and we are root; otherwise prints one line saying why not. Never fails the
# build by itself (the tests decide, under ODDSTREAM_REQUIRE_SERVICES, whether a missing
# browser is an error). Playwright's own browser download is never used.
set -u

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "  Chromium: present ($CHROMIUM)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "  Chromium: missing, not installed (no apt-get on this machine)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "  Chromium: missing, not installed (needs root for apt-get install chromium)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# An image with no package lists yet (or a stale one) cannot find the package: refresh
# the lists first when chromium is not a known candidate.
if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq >"$log" 2>&1 || true
fi

# fonts-liberation (a recommend we otherwise skip) has the narrow face the board uses.
if apt-get install -y -qq --no-install-recommends chromium fonts-liberation >"$log" 2>&1 && [ -x "$CHROMIUM" ]; then
  echo "  Chromium: installed ($("$CHROMIUM" --version 2>/dev/null | head -n1))"
else
  echo "  Chromium: install failed: $(grep -m1 -iE '^(E|W):|error' "$log" || tail -n1 "$log")"
fi
exit 0
