#!/usr/bin/env bash
# The GitHub Action's scan (passman action run, on a pull_request event of
# the last 50 first-parent commits) against gitleaks git
# --log-opts=BASE..HEAD, on the benchmark repository bench-scan builds and
# reuses. Usage: scripts/bench-action.sh PASSMAN GITLEAKS
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./scripts/benchaction -passman "${1:-bin/passman}" -gitleaks "${2:-.tools/gitleaks}" -commits "${COMMITS:-10000}" -pr "${PR_COMMITS:-50}"
