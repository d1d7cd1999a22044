# Shell functions shared by demo-cluster.sh and bench-cluster.sh: a 3-member
# etcd cluster and passman servers over it, all on 127.0.0.1, under $tmp.
# The caller sets tmp, passman and etcd, and calls cluster_cleanup on exit.
# shellcheck shell=bash

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

etcd_pids=()
etcd_client_urls=()
server_pids=()

# start_etcd N FSYNC: N members; FSYNC=0 adds --unsafe-no-fsync.
start_etcd() {
  local n=$1 fsync=${2:-1} initial="" i
  local -a peers clients
  for ((i = 0; i < n; i++)); do
    clients[i]=http://127.0.0.1:$(free_port)
    peers[i]=http://127.0.0.1:$(free_port)
    initial+="${initial:+,}m$i=${peers[i]}"
  done
  for ((i = 0; i < n; i++)); do
    local extra=()
    [ "$fsync" = 1 ] || extra+=(--unsafe-no-fsync)
    # The limits passman's etcd store expects (store/etcd).
    "$etcd" --name "m$i" --data-dir "$tmp/etcd/m$i" \
      --listen-client-urls "${clients[i]}" --advertise-client-urls "${clients[i]}" \
      --listen-peer-urls "${peers[i]}" --initial-advertise-peer-urls "${peers[i]}" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token passman-demo \
      --max-txn-ops 4096 --max-request-bytes 8388608 --listen-metrics-urls "" \
      --log-level warn --log-outputs "$tmp/etcd-m$i.log" "${extra[@]}" &
    etcd_pids[i]=$!
  done
  etcd_client_urls=("${clients[@]}")
  for ((i = 0; i < n; i++)); do
    for _ in $(seq 200); do
      curl -fsS "${clients[i]}/health" 2>/dev/null | grep -q '"health":"true"' && break
      sleep 0.1
    done
    curl -fsS "${clients[i]}/health" | grep -q '"health":"true"'
  done
}

# etcd_url PREFIX: the etcd://... store location for passman.
etcd_url() {
  local hosts="" u
  for u in "${etcd_client_urls[@]}"; do hosts+="${hosts:+,}${u#http://}"; done
  echo "etcd://$hosts/$1"
}

# etcd_leader: the index of the member that leads.
etcd_leader() {
  local i st id leader
  for ((i = 0; i < ${#etcd_client_urls[@]}; i++)); do
    st=$(curl -fsS -X POST -d '{}' "${etcd_client_urls[i]}/v3/maintenance/status" 2>/dev/null) || continue
    id=$(sed -E 's/.*"member_id":"([0-9]+)".*/\1/' <<<"$st")
    leader=$(sed -E 's/.*"leader":"([0-9]+)".*/\1/' <<<"$st")
    if [ "$id" = "$leader" ]; then echo "$i"; return; fi
  done
  return 1
}

# server_config ID DIR PORT PREFIX AUDIT_SYNC: a server's YAML on stdout,
# with $SERVER_EXTRA (more YAML lines, such as a scheduler section) at its
# end.
server_config() {
  local eps
  eps=$(IFS=,; echo "${etcd_client_urls[*]}")
  cat <<YAML
listen: 127.0.0.1:$3
tls_cert: $tmp/cert.pem
tls_key: $tmp/key.pem
store: $2
key_file: $tmp/master.key
policies: $tmp/policy
audit_sync: ${5:-fsync}
log: {level: warn}
storage: etcd
server_id: $1
etcd:
  endpoints: [${eps//,/, }]
  prefix: $4
  stale_reads: ${STALE_READS:-false}
${SERVER_EXTRA:-}
YAML
}

# start_server ID DIR PREFIX [AUDIT_SYNC]: starts a passman server, waits
# until it is ready, and sets server_url (not printed: a server started in
# a command substitution would hold its output open).
start_server() {
  local port
  port=$(free_port)
  server_config "$1" "$2" "$port" "$3" "${4:-fsync}" >"$tmp/$1.yaml"
  "$passman" server --config "$tmp/$1.yaml" >>"$tmp/$1.log" 2>&1 &
  server_pids+=($!)
  local url=https://127.0.0.1:$port
  for _ in $(seq 200); do
    curl -fsS --cacert "$tmp/cert.pem" "$url/v1/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS --cacert "$tmp/cert.pem" "$url/v1/ready" >/dev/null || { cat "$tmp/$1.log" >&2; return 1; }
  server_url=$url
}

make_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
}

cluster_cleanup() {
  local p
  for p in "${server_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${server_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${etcd_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${etcd_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  server_pids=()
  etcd_pids=()
}
