#!/usr/bin/env bash
# Installs system packages the build and the tests prefer, if they are
# missing and this user can install packages. Without them everything still
# works, so a failure here is reported, never fatal:
#   - the RE2 library (Debian package libre2-dev) that the scanner links for
#     speed; without it the build falls back to RE2 compiled to WebAssembly
#     (see Makefile);
#   - the PostgreSQL server (package postgresql), whose binaries the
#     postgres rotation connector's tests run a throwaway server from
#     (internal/pgtest); without them those tests skip, or fail when
#     PASSMAN_REQUIRE_POSTGRES=1;
#   - strace (package strace), with which the fsync durability tests
#     (internal/synctrace) watch a child's system calls; without it they
#     skip, or fail when PASSMAN_REQUIRE_STRACE=1;
#   - Node.js (package nodejs), which runs the GitHub Action's JavaScript
#     entry points under nektos/act in the Action's end-to-end suite
#     (action/act_test.go); without it that suite fails under make.
set -uo pipefail

have_re2() { pkg-config --exists re2 2>/dev/null; }
# Where internal/pgtest looks: Debian's versioned directories, then PATH.
have_postgres() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ||
    { command -v initdb >/dev/null && command -v pg_ctl >/dev/null; }
}

missing=()
have_re2 || missing+=(libre2-dev)
have_postgres || missing+=(postgresql)
command -v strace >/dev/null || missing+=(strace)
command -v node >/dev/null || missing+=(nodejs)
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi

# What the build does without each package.
without() {
  case $1 in
  libre2-dev) echo "building with the WebAssembly RE2" ;;
  postgresql) echo "the PostgreSQL connector tests will skip" ;;
  strace) echo "the fsync durability tests will skip (make test fails)" ;;
  nodejs) echo "the GitHub Action's act suite cannot run (make test fails)" ;;
  esac
}

if ! command -v apt-get >/dev/null; then
  for pkg in "${missing[@]}"; do echo "deps: no apt-get to install $pkg; $(without "$pkg")" >&2; done
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    for pkg in "${missing[@]}"; do echo "deps: not root; install $pkg ($(without "$pkg"))" >&2; done
    exit 0
  fi
fi

log=/tmp/passman-deps.log
: >"$log"
updated=""
# Each package on its own, so one that fails does not keep the other out;
# the package lists are refreshed once, only if an install fails.
for pkg in "${missing[@]}"; do
  echo "deps: installing $pkg" >&2
  if DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$pkg" >>"$log" 2>&1; then
    continue
  fi
  if [ -z "$updated" ]; then
    updated=1
    $sudo apt-get update -q >>"$log" 2>&1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$pkg" >>"$log" 2>&1 ||
    echo "deps: apt-get install $pkg failed (see $log); $(without "$pkg")" >&2
done
exit 0
