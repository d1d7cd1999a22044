#!/usr/bin/env bash
# terraform apply, then a no-change terraform plan, of N (1,000)
# passman_secret resources against a real passman server on 127.0.0.1 (a
# durable, audited store in a temporary directory), side by side with the
# same runs of N terraform_data resources: Terraform's own overhead, the
# floor. Prints the times and the ratios. The provider is the local build,
# through dev_overrides; nothing is downloaded.
#
# Usage: scripts/bench-terraform.sh [PASSMAN] [PROVIDER_DIR]
# N (1000), PARALLELISM (terraform's default, 10), AUDIT_SYNC (fsync).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v terraform >/dev/null || { echo "bench-terraform: no terraform on PATH" >&2; exit 1; }

passman=$(realpath "${1:-bin/passman}")
provider_dir=$(realpath "${2:-bin}")
n=${N:-1000}
par=${PARALLELISM:-10}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/passman-bench-terraform.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

unset PASSMAN_ADDR PASSMAN_TOKEN PASSMAN_CACERT PASSMAN_MASTER_KEY PASSMAN_KEY_FILE TF_LOG
export PASSMAN_STORE=$tmp/store PASSMAN_POLICIES=$tmp/policy PASSMAN_AUDIT_SYNC=${AUDIT_SYNC:-fsync}
mkdir -p "$PASSMAN_POLICIES"
cat > "$PASSMAN_POLICIES/bench.rego" <<'REGO'
# Terraform's token manages everything, policy evaluation (the plan-time
# lint) included.
package passman.authz

allow if {
	input.subject.kind == "token"
	input.subject.id == "terraform"
}
REGO
"$passman" init >/dev/null
token=$("$passman" token create --identity terraform --ttl 2h 2>/dev/null)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=https://127.0.0.1:$port
"$passman" server --listen "127.0.0.1:$port" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
  --log-level warn 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 100); do
  if curl -fsS --cacert "$tmp/cert.pem" "$addr/v1/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$tmp/server.log" >&2; exit 1; fi
  sleep 0.1
done

cat > "$tmp/terraform.rc" <<RC
provider_installation {
  dev_overrides {
    "passman-dev/passman" = "$provider_dir"
  }
  direct {}
}
RC
export TF_CLI_CONFIG_FILE=$tmp/terraform.rc CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
export PASSMAN_ADDR=$addr PASSMAN_TOKEN=$token PASSMAN_CACERT=$tmp/cert.pem

mkdir -p "$tmp/passman" "$tmp/floor"
cat > "$tmp/passman/main.tf" <<HCL
terraform {
  required_providers {
    passman = { source = "passman-dev/passman" }
  }
}
provider "passman" {}
resource "passman_secret" "s" {
  count       = $n
  path        = "bench/s\${count.index}"
  owner       = "team-bench"
  description = "benchmark secret"
  generate {}
}
HCL
cat > "$tmp/floor/main.tf" <<HCL
resource "terraform_data" "s" {
  count = $n
  input = "bench/s\${count.index}"
}
HCL

# cpu is the CPU time (s) a process has used so far (utime + stime).
cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# measure runs a command; it prints its wall time, the CPU time of it and
# its children (terraform and the provider) and the server's CPU time
# meanwhile. The machine may be shared: CPU time is the steadier figure.
measure() {
  local s0 s1
  s0=$(cpu "$server_pid")
  /usr/bin/time -f '%e %U %S' -o "$tmp/time.txt" "$@" >"$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt" >&2; return 1; }
  s1=$(cpu "$server_pid")
  read -r wall user sys <"$tmp/time.txt"
  echo "$wall $(echo "$user + $sys" | bc -l) $(echo "$s1 - $s0" | bc -l)"
}

declare -A t
for kind in floor passman; do
  t[$kind.apply]=$(measure terraform -chdir="$tmp/$kind" apply -auto-approve -input=false -parallelism="$par")
  t[$kind.plan]=$(measure terraform -chdir="$tmp/$kind" plan -input=false -detailed-exitcode -parallelism="$par")
done

printf '%d resources, parallelism %d, %s cores (load average %s), audit sync %s\n' "$n" "$par" "$(nproc)" \
  "$(cut -d' ' -f1 /proc/loadavg)" "$PASSMAN_AUDIT_SYNC"
printf '%-6s %-22s %-36s %s\n' run "terraform_data wall/cpu" "passman_secret wall/cpu (server cpu)" "ratio wall, cpu (incl. server)"
for run in apply plan; do
  read -r fw fc _ <<<"${t[floor.$run]}"
  read -r pw pc ps <<<"${t[passman.$run]}"
  printf '%-6s %8.2fs %8.2fs     %8.2fs %8.2fs (%6.2fs)     %5.2fx, %5.2fx\n' "$run" "$fw" "$fc" "$pw" "$pc" "$ps" \
    "$(echo "$pw / $fw" | bc -l)" "$(echo "($pc + $ps) / $fc" | bc -l)"
done
