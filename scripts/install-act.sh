#!/usr/bin/env bash
# Installs nektos/act, pinned, into .tools/ (as the Makefile installs
# gitleaks): the GitHub Action's end-to-end suite (action/act_test.go) runs
# action.yml with it, in host mode (-P ubuntu-latest=-self-hosted), so it
# needs no container runtime and no network once installed.
# Usage: scripts/install-act.sh [DIR]   (default .tools)
set -euo pipefail
cd "$(dirname "$0")/.."
ACT_VERSION=v0.2.89
dir="${1:-$PWD/.tools}"
mkdir -p "$dir"
if [ -x "$dir/act" ] && "$dir/act" --version 2>/dev/null | grep -q "${ACT_VERSION#v}"; then
  exit 0
fi
GOFLAGS= GOBIN="$dir" go install "github.com/nektos/act@${ACT_VERSION}"
