#!/usr/bin/env bash
# Build a local Debian bookworm base image (no registry is reachable): debootstrap a minbase root,
# import it into the local Docker engine. Idempotent: an existing image is kept.
# Usage: tests/deploy/debian-base.sh [TAG]   (default ferry-test/bookworm:base); prints the tag.
set -euo pipefail
tag="${1:-ferry-test/bookworm:base}"
mirror="${FERRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "debootstrap is missing: sudo apt-get install -y debootstrap" >&2
    exit 1
  fi
  echo "Installing debootstrap ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
root="$(mktemp -d /tmp/ferry-bookworm.XXXXXX)"
trap 'rm -rf "$root"' EXIT
echo "debootstrap bookworm into $root (about 20 s) ..." >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2
  exit 1
}
rm -f "$root.log"
rm -rf "$root"/var/cache/apt/archives/*.deb
tar -C "$root" -c . | docker import - "$tag" >/dev/null
echo "$tag"
