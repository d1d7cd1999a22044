#!/usr/bin/env bash
# passman scan git against gitleaks git on the deterministic benchmark
# repository (built once under $TMPDIR/passman-bench-scan from this module's dependencies'
# source, then reused). Usage: scripts/bench-scan.sh PASSMAN GITLEAKS [FLAGS]
# COMMITS (default 10000) sets the repository's size; FLAGS go to
# scripts/benchscan (e.g. -startup-only -startup-runs 300).
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./scripts/benchscan -passman "${1:-bin/passman}" -gitleaks "${2:-.tools/gitleaks}" -commits "${COMMITS:-10000}" "${@:3}"
