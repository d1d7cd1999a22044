#!/usr/bin/env bash
# passman server under load: builds bin/passman and scripts/loadgen, starts a
# real (non-dev) server on 127.0.0.1 over a durable store in a temporary
# directory (bbolt fsync on, every request audited), with its own TLS
# certificate and a token that a policy rule lets read and write under
# bench/, then runs loadgen read then write and prints the figures. The
# server is stopped with SIGTERM (graceful) and everything is removed.
#
# AUDIT_SYNC chooses when an audit entry counts as written: fsync (the
# default, passman's default: every entry, reads included, survives a power
# loss before the answer goes out) or write (write(2) before the answer, as
# a file audit device of Vault or OpenBao does: survives a crash of the
# process, not of the OS).
#
# Usage: scripts/bench-server.sh [PASSMAN]   (default: builds bin/passman)
# AUDIT_SYNC (fsync), CLIENTS (16), DURATION (10s), SECRETS (1000),
# VALUE_SIZE (64), PORT (a free one), LOADGEN_FLAGS (extra loadgen flags,
# e.g. -json).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ge 1 ]; then
  passman=$(realpath "$1")
else
  go build -trimpath -o bin/ ./cmd/passman ./cmd/passman-full
  passman=$(realpath bin/passman)
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/passman-bench-server.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
go build -o "$tmp/loadgen" ./scripts/loadgen

# A store of its own, with durable settings whatever the caller's
# environment says.
unset PASSMAN_ADDR PASSMAN_TOKEN PASSMAN_CACERT PASSMAN_MASTER_KEY PASSMAN_KEY_FILE
export PASSMAN_STORE=$tmp/store PASSMAN_POLICIES=$tmp/policy PASSMAN_AUDIT_SYNC=${AUDIT_SYNC:-fsync}
mkdir -p "$PASSMAN_POLICIES"
cat > "$PASSMAN_POLICIES/bench.rego" <<'EOF'
# The load generator's token reads and writes under bench/.
package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.id == "bench"
	input.action in {"read", "write"}
	startswith(input.path, "bench/")
}
EOF
"$passman" init >/dev/null
token=$("$passman" token create --identity bench --ttl 2h 2>/dev/null)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

port=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
addr=https://127.0.0.1:$port
# Request logs go to a file: a line per request is part of the server's cost.
"$passman" server --listen "127.0.0.1:$port" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
  --log-level info 2>"$tmp/server.log" &
server_pid=$!

for _ in $(seq 100); do
  if curl -fsS --cacert "$tmp/cert.pem" "$addr/v1/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$tmp/server.log" >&2; exit 1; fi
  sleep 0.1
done
curl -fsS --cacert "$tmp/cert.pem" "$addr/v1/ready" >/dev/null

echo "passman server $addr ($(nproc) cores), store $PASSMAN_STORE, audit sync $PASSMAN_AUDIT_SYNC" >&2
# shellcheck disable=SC2086 # LOADGEN_FLAGS is a list of flags
PASSMAN_TOKEN=$token "$tmp/loadgen" -addr "$addr" -cacert "$tmp/cert.pem" -mode read,write \
  -clients "${CLIENTS:-16}" -duration "${DURATION:-10s}" -secrets "${SECRETS:-1000}" \
  -value-size "${VALUE_SIZE:-64}" ${LOADGEN_FLAGS:-}

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
if [ "$status" -ne 0 ]; then
  echo "server exited with status $status" >&2
  tail -n 20 "$tmp/server.log" >&2
  exit 1
fi
echo "server stopped gracefully ($(wc -l <"$tmp/server.log") log lines)" >&2
