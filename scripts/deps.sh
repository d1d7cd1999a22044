#!/usr/bin/env bash
# Installs the RE2 library (Debian package libre2-dev) that the scanner links
# for speed, if it is missing and this user can install packages. Without
# it the build falls back to RE2 compiled to WebAssembly (see Makefile), so
# a failure here is reported, never fatal.
set -uo pipefail
if pkg-config --exists re2 2>/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "deps: no apt-get; building with the WebAssembly RE2" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "deps: not root; install libre2-dev for faster scans (building with the WebAssembly RE2)" >&2
    exit 0
  fi
fi
echo "deps: installing libre2-dev" >&2
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libre2-dev >/tmp/passman-deps.log 2>&1; then
  $sudo apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q libre2-dev >/tmp/passman-deps.log 2>&1 \
    || echo "deps: apt-get install libre2-dev failed (see /tmp/passman-deps.log); building with the WebAssembly RE2" >&2
fi
exit 0
