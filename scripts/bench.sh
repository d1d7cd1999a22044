#!/usr/bin/env bash
# Runs the Go benchmarks and prints their figures, then a benchstat summary.
# Usage: scripts/bench.sh [OUT]   (raw results go to OUT, default bench.txt)
#
# COUNT repeats each benchmark (default 3) so benchstat can show spread.
# The store-size benchmarks build a million-secret store once per run of the
# store package; allow a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench.txt}
count=${COUNT:-3}
: > "$out"

run() { # package, benchmark regexp, benchtime
  echo "== go test $1 -bench '$2' -benchtime $3 -count $count" >&2
  go test "$1" -run '^$' -bench "$2" -benchtime "$3" -count "$count" -timeout 60m | tee -a "$out"
}

# Store-level Get (decryption included) at 1k, 100k and 1M secrets, p50/p99.
run ./store 'BenchmarkGet$' 20000x
# Peak RSS of a fresh process that opens the 1M store and reads 100k secrets.
count=1 run ./store 'BenchmarkOpenAndReadRSS' 1x
# Durable Put: one writer, and 32 writers sharing group commits.
run ./store 'BenchmarkPut' 2000x
# The same through the audited Service, with the audit log in both modes.
run ./core 'BenchmarkPut|BenchmarkGet' 1000x
# The audit log and the bbolt backend on their own.
run ./audit 'BenchmarkAppend' 2000x
run ./audit 'BenchmarkVerify' 10x
run ./store/boltdb '.' 1000x
# Policy: an authz decision with 50 rules (p50/p99), lint of 10,000 secrets.
run ./policy 'BenchmarkAuthorize' 2000x
run ./policy 'BenchmarkLint10k' 3x
# Manifest: parse and plan 10,000 secrets against a 10,000-secret store.
run ./manifest '.' 3x
# Managed-secret matching: 4 MB of source against 100,000 fingerprints.
run ./scanner/managed '.' 20x

# Rotation: one rotation (generated connector), rotate --due over 1,000
# secrets, a leak through scan and respond to a finished rotation, and one
# PostgreSQL rotation against a real server, durable and syncing nothing
# (skipped without PostgreSQL).
run ./rotation 'BenchmarkRotateOne|BenchmarkRotateDue|BenchmarkLeakToRotated|BenchmarkPostgres' 5x
# The scanner on a 1,000-commit benchmark repository (make bench-scan
# compares with gitleaks on 10,000).
run ./scanner 'BenchmarkScanGit' 2x

echo >&2
echo "== benchstat $out" >&2
go tool benchstat "$out"
