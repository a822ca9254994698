#!/usr/bin/env bash
# Install the Debian packages Ferry's tests need when they are missing (root only), and start a
# Docker engine when none answers: PostgreSQL's server binaries, docker.io, a static busybox (for
# the test image, built locally: no registry) and git.
set -euo pipefail

need=()
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  need+=(docker.io)
fi
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  need+=(busybox-static)
fi
if ! command -v git >/dev/null 2>&1; then
  need+=(git)
fi
# Debian's chromium for the headless-browser upload test (playwright never downloads one).
if [ ! -x /usr/bin/chromium ]; then
  need+=(chromium)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${need[*]}. Install them: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "Installing ${need[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A Docker engine for the executor tests.
if docker info >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "No Docker engine answers. Start one (sudo systemctl start docker) and make sure $(id -un)" \
    "may use it (sudo usermod -aG docker $(id -un), then log in again)." >&2
  exit 1
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl start docker >/dev/null 2>&1 || true
fi
if ! docker info >/dev/null 2>&1; then
  log="$(mktemp /tmp/ferry-dockerd.XXXXXX.log)"
  echo "Starting dockerd (log: $log) ..."
  setsid nohup dockerd >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if docker info >/dev/null 2>&1; then
      exit 0
    fi
    sleep 0.5
  done
  echo "dockerd did not answer within 60 s. Last lines of $log:" >&2
  tail -n 20 "$log" >&2 || true
  exit 1
fi
