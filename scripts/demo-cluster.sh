#!/usr/bin/env bash
# Several servers, one truth: 3 etcd members and 2 passman servers on
# 127.0.0.1. A store is created, moved into etcd (store migrate), and
# served by both servers; a write on one is read on the other, the etcd
# leader and then a passman server are killed and the cluster goes on.
# Both servers run the scheduler: a secret with a 3-second rotation period
# rotates under the leader; the leading server is killed, the other one
# leads (passman status says so) and the next rotation happens there. Every
# audit chain verifies. Everything lives in a temporary directory, removed
# on exit.
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
fail() { printf '\033[31mdemo failed: %s\033[0m\n' "$*" >&2; for f in "$tmp"/pm-*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done; exit 1; }
q() { # q URL ARGS...: a command against one server, quiet
  local url=$1
  shift
  PASSMAN_ADDR=$url PASSMAN_TOKEN=$token PASSMAN_CACERT=$tmp/cert.pem "$passman" "$@"
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < deadline)) || fail "no $what within ${secs}s"
    sleep 0.2
  done
}
# live_leader URL: the leader the server's election names now ("" if none).
live_leader() {
  q "$1" status -o json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin).get("scheduler") or {}; print(s.get("leader","") if s.get("live") else "")'
}
# version URL PATH: the current version of PATH.
version() {
  q "$1" secret get "$2" -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])'
}
leads() { [ "$(live_leader "$1")" = "$2" ]; }
# rotated_by URL PATH: the node of the newest recorded run that rotated PATH.
rotated_by() {
  q "$1" status -o json | python3 -c 'import json,sys
for r in json.load(sys.stdin)["scheduler"]["runs"]:
    if sys.argv[1] in r.get("rotated", []) + r.get("resumed", []):
        print(r["node"]); break' "$2"
}
# status URL: passman status, without the runs that found nothing to do.
status() { on "$1" status | grep -v ': 0 due, 0 rotated, 0 resumed, 0 failed, 0 revoked, 0 tokens reaped'; }
rotated_past() { local v; v=$(version "$1" "$2") && [ "$v" -gt "$3" ]; }
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

say "two servers over it, each running the scheduler (config: storage: etcd, scheduler; see $tmp/pm-1.yaml)"
unset PASSMAN_STORE PASSMAN_POLICIES PASSMAN_KEY_FILE PASSMAN_AUDIT_SYNC
# A 2 s election TTL and a 1 s interval keep the demo short (defaults: 10 s, 1 m).
export SERVER_EXTRA="scheduler: {enabled: true, interval: 1s, election_ttl: 2s}"
start_server pm-1 "$tmp/pm-1" passman/demo/
s1=$server_url
p1=${server_pids[-1]}
start_server pm-2 "$tmp/pm-2" passman/demo/
s2=$server_url
p2=${server_pids[-1]}
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
kill -KILL "$p1"
{ wait "$p1"; } 2>/dev/null || true
on "$s2" secret history prod/db/password

say "pm-1 restarts, picks up where its audit chain stopped"
start_server pm-1 "$tmp/pm-1" passman/demo/
s1=$server_url
p1=${server_pids[-1]}
on "$s1" secret get prod/db/password
echo

say "the schedule: a secret that rotates every 3 seconds, under the leader"
printf 'initial' | on "$s1" secret put app/session-key
on "$s1" secret meta app/session-key --rotation-connection generated --rotation-period 3s >/dev/null
wait_for 20 "scheduled rotation of app/session-key" rotated_past "$s2" app/session-key 1
# The leader is the server whose recorded run rotated it (the election's
# oldest key may still be a killed server's until its lease runs out).
leader=$(rotated_by "$s2" app/session-key)
case $leader in
pm-1) lead_pid=$p1 other=pm-2 other_url=$s2 ;;
pm-2) lead_pid=$p2 other=pm-1 other_url=$s1 ;;
*) fail "unexpected leader '$leader'" ;;
esac
status "$other_url"
echo "rotated under $leader (the status comes from $other: every server answers the same)"

say "the leader, $leader, is killed (SIGKILL, no resignation); $other leads once its lease runs out"
before=$(version "$other_url" app/session-key)
{
  kill -KILL "$lead_pid"
  wait "$lead_pid"
} 2>/dev/null || true
killed=$SECONDS
wait_for 20 "$other leading after $leader died" leads "$other_url" "$other"
echo "$other leads $((SECONDS - killed)) s after $leader died (bound: election TTL 2 s + interval 1 s)"
wait_for 20 "a rotation under $other" rotated_past "$other_url" app/session-key "$before"
status "$other_url"
by=$(rotated_by "$other_url" app/session-key)
[ "$by" = "$other" ] || fail "the last rotation ran on $by, not $other"
echo "app/session-key went from v$before to v$(version "$other_url" app/session-key) under $other: the schedule moved"

say "$leader restarts and joins the election as a follower"
start_server "$leader" "$tmp/$leader" passman/demo/
if [ "$leader" = pm-1 ]; then s1=$server_url; else s2=$server_url; fi
leads "$s1" "$other" || fail "$leader took the lead back from a live $other"
echo "$other still leads"

say "every server's audit chain, as replicated in etcd, verifies"
on "$s1" audit verify
