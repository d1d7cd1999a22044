#!/usr/bin/env bash
# Several servers, one truth: 3 etcd members and 2 passman servers on
# 127.0.0.1. A store is created, moved into etcd (store migrate), and
# served by both servers; a write on one is read on the other, the etcd
# leader and then a passman server are killed and the cluster goes on, and
# every audit chain verifies. Everything lives in a temporary directory,
# removed on exit.
#
# Usage: scripts/demo-cluster.sh [PASSMAN [ETCD]]  (defaults: bin/passman,
# .tools/etcd; make demo-cluster builds both)
set -euo pipefail
cd "$(dirname "$0")/.."
passman=$(realpath "${1:-bin/passman}")
etcd=$(realpath "${2:-.tools/etcd}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/passman-demo-cluster.XXXXXX")
# shellcheck source=scripts/cluster-lib.sh
source scripts/cluster-lib.sh
trap 'cluster_cleanup; rm -rf "$tmp"' EXIT
unset PASSMAN_ADDR PASSMAN_TOKEN PASSMAN_CACERT PASSMAN_MASTER_KEY

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
on() { # on URL passman ARGS...: a command against one server
  local url=$1
  shift
  printf '\033[1m$ passman %s\033[0m   (server %s)\n' "$*" "$url"
  PASSMAN_ADDR=$url PASSMAN_TOKEN=$token PASSMAN_CACERT=$tmp/cert.pem "$passman" "$@"
}

say "a store on one machine, with a token for the demo"
export PASSMAN_STORE=$tmp/pm-1 PASSMAN_POLICIES=$tmp/policy PASSMAN_KEY_FILE=$tmp/master.key PASSMAN_AUDIT_SYNC=fsync
mkdir -p "$PASSMAN_POLICIES"
cat >"$PASSMAN_POLICIES/demo.rego" <<'REGO'
# The demo token may do everything.
package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.id == "demo"
}
REGO
"$passman" init
token=$("$passman" token create --identity demo --ttl 1h 2>/dev/null)
make_cert

say "3 etcd members on loopback"
start_etcd 3 1
printf '%s\n' "${etcd_client_urls[@]}"

say "passman store migrate --to $(etcd_url passman/demo) --server-id pm-1"
"$passman" store migrate --to "$(etcd_url passman/demo)" --server-id pm-1

say "two servers over it (config: storage: etcd; see $tmp/pm-1.yaml)"
unset PASSMAN_STORE PASSMAN_POLICIES PASSMAN_KEY_FILE PASSMAN_AUDIT_SYNC
start_server pm-1 "$tmp/pm-1" passman/demo/
s1=$server_url
start_server pm-2 "$tmp/pm-2" passman/demo/
s2=$server_url
echo "pm-1 $s1, pm-2 $s2"

say "a write on pm-1, read on pm-2"
printf 'first-password' | on "$s1" secret put prod/db/password
on "$s2" secret get prod/db/password
echo

say "the etcd leader is killed (SIGKILL); the cluster elects another"
leader=$(etcd_leader)
kill -KILL "${etcd_pids[leader]}"
{ wait "${etcd_pids[leader]}"; } 2>/dev/null || true
echo "killed member m$leader"
printf 'second-password' | on "$s2" secret put prod/db/password
on "$s1" secret get prod/db/password
echo

say "passman server pm-1 is killed (SIGKILL); pm-2 serves on"
kill -KILL "${server_pids[0]}"
{ wait "${server_pids[0]}"; } 2>/dev/null || true
on "$s2" secret history prod/db/password

say "pm-1 restarts, picks up where its audit chain stopped"
start_server pm-1 "$tmp/pm-1" passman/demo/
s1=$server_url
on "$s1" secret get prod/db/password
echo

say "every server's audit chain, as replicated in etcd, verifies"
on "$s1" audit verify
