#!/usr/bin/env bash
# passman as a cluster under load, beside the single-node server, in one
# run on this machine: 3 etcd members (fsync on) and 2 passman servers over
# them, 16 clients spread over both servers reading, then writing, for
# DURATION each; then the single-node bbolt server (scripts/bench-server.sh)
# with the same clients. Prints reads/s, writes/s and p99 of both and the
# cluster's ratios to the single node.
#
# Usage: scripts/bench-cluster.sh [PASSMAN [ETCD]]  (defaults: bin/passman,
# .tools/etcd; make bench-cluster builds both)
# AUDIT_SYNC (fsync), CLIENTS (16), DURATION (10s), SECRETS (1000),
# VALUE_SIZE (64), ETCD_FSYNC (1; 0 runs etcd with --unsafe-no-fsync),
# STALE_READS (false; true serves reads from the member at hand).
set -euo pipefail
cd "$(dirname "$0")/.."
passman=$(realpath "${1:-bin/passman}")
etcd=$(realpath "${2:-.tools/etcd}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/passman-bench-cluster.XXXXXX")
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
trap 'cluster_cleanup; [ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
go build -o "$tmp/loadgen" ./scripts/loadgen

audit_sync=${AUDIT_SYNC:-fsync}
unset PASSMAN_ADDR PASSMAN_TOKEN PASSMAN_CACERT PASSMAN_MASTER_KEY
export PASSMAN_STORE=$tmp/pm-1 PASSMAN_POLICIES=$tmp/policy PASSMAN_KEY_FILE=$tmp/master.key PASSMAN_AUDIT_SYNC=$audit_sync
mkdir -p "$PASSMAN_POLICIES"
cat >"$PASSMAN_POLICIES/bench.rego" <<'REGO'
# The load generator's token reads and writes under bench/.
package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.id == "bench"
	input.action in {"read", "write"}
	startswith(input.path, "bench/")
}
REGO
"$passman" init >/dev/null
token=$("$passman" token create --identity bench --ttl 2h 2>/dev/null)
make_cert
start_etcd 3 "${ETCD_FSYNC:-1}"
"$passman" store migrate --to "$(etcd_url passman/bench)" --server-id pm-1 >/dev/null
# The servers take their directories from their configs.
unset PASSMAN_STORE PASSMAN_POLICIES PASSMAN_KEY_FILE PASSMAN_AUDIT_SYNC
start_server pm-1 "$tmp/pm-1" passman/bench/ "$audit_sync"
url1=$server_url
start_server pm-2 "$tmp/pm-2" passman/bench/ "$audit_sync"
url2=$server_url
echo "cluster: 3 etcd members (fsync ${ETCD_FSYNC:-1}), servers $url1 $url2 ($(nproc) cores), audit sync $audit_sync, stale reads ${STALE_READS:-false}" >&2
PASSMAN_TOKEN=$token "$tmp/loadgen" -addr "$url1,$url2" -cacert "$tmp/cert.pem" -mode read,write \
  -clients "${CLIENTS:-16}" -duration "${DURATION:-10s}" -secrets "${SECRETS:-1000}" \
  -value-size "${VALUE_SIZE:-64}" -json >"$tmp/cluster.json"
cluster_cleanup

echo "single node: bbolt server, audit sync $audit_sync" >&2
AUDIT_SYNC=$audit_sync LOADGEN_FLAGS=-json CLIENTS=${CLIENTS:-16} DURATION=${DURATION:-10s} \
  SECRETS=${SECRETS:-1000} VALUE_SIZE=${VALUE_SIZE:-64} \
  ./scripts/bench-server.sh "$passman" 2>/dev/null >"$tmp/single.json"

python3 - "$tmp/cluster.json" "$tmp/single.json" <<'PY'
import json, sys
def load(p):
    return {r["mode"]: r for r in map(json.loads, filter(str.strip, open(p)))}
c, s = load(sys.argv[1]), load(sys.argv[2])
print(f"{'':22}{'cluster (2+3)':>16}{'single bbolt':>16}{'ratio':>8}")
for mode, what in (("read", "reads/s"), ("write", "writes/s")):
    a, b = c[mode], s[mode]
    print(f"{what:22}{a['throughput_rps']:>16.0f}{b['throughput_rps']:>16.0f}{a['throughput_rps']/b['throughput_rps']:>8.2f}")
    print(f"{mode + ' p99 ms':22}{a['p99_ms']:>16.1f}{b['p99_ms']:>16.1f}{a['p99_ms']/max(b['p99_ms'],1e-9):>8.2f}")
    for name, r in (("cluster", a), ("single", b)):
        if r["errors"]:
            print(f"  {name} {mode}: {r['errors']} errors, first: {r.get('first_error','')}")
print("reference, OpenBao 2.5.5 (raft, file audit), same machine: 3,700 reads/s (p99 34 ms), 1,190 writes/s (p99 28 ms)")
PY
