#!/usr/bin/env bash
# Install the Debian packages Ferry needs when they are missing (root only), and start a Docker
# engine when none answers.
#   deploy/system-deps.sh run    what running Ferry needs (`make run`): docker.io, busybox-static
#                                (the example operations' base image, built locally: no registry), git
#   deploy/system-deps.sh test   the above plus what the tests need (`make test`, the default):
#                                PostgreSQL's server binaries and chromium (one headless-browser test)
#   deploy/system-deps.sh --list run|test   print the Debian packages of that set and exit
set -euo pipefail

run_packages=(docker.io busybox-static git)
test_packages=("${run_packages[@]}" postgresql chromium)

if [ "${1:-}" = "--list" ]; then
  case "${2:-test}" in
    run) echo "${run_packages[*]}" ;;
    test) echo "${test_packages[*]}" ;;
    *) echo "usage: $0 --list run|test" >&2; exit 2 ;;
  esac
  exit 0
fi
purpose="${1:-test}"
case "$purpose" in
  run | test) ;;
  *) echo "usage: $0 [run|test] | --list run|test" >&2; exit 2 ;;
esac

need=()
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  need+=(docker.io)
fi
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  need+=(busybox-static)
fi
if ! command -v git >/dev/null 2>&1; then
  need+=(git)
fi
if [ "$purpose" = test ]; then
  if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
  fi
  # Debian's chromium for the headless-browser upload test (playwright never downloads one).
  if [ ! -x /usr/bin/chromium ]; then
    need+=(chromium)
  fi
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${need[*]}. Install them: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "Installing ${need[*]} (apt-get) ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

# A Docker engine for jobs (and the executor tests).
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
