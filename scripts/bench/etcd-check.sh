#!/usr/bin/env bash
# etcd-check against what it replaces, `etcdctl endpoint health` plus `etcdctl endpoint status`
# (ETCDCTL_API=3), on the same 3-member etcd cluster with TLS and client-certificate auth, started
# here on loopback: once healthy, and once with one member black-holed (SIGSTOP). Certificates
# are made with openssl. Everything started is killed and removed on exit.
# Prints a markdown table. Needs root (setsid'd etcd members), etcd-server, etcd-client, openssl,
# hyperfine, jq.
set -euo pipefail

bin=${HARDWAY_BIN:-target/release}
etcd_check=$(realpath "$bin/etcd-check")
runs=${RUNS:-10}
slow_runs=${SLOW_RUNS:-3}
tmp=$(mktemp -d /tmp/hwbench-etcd.XXXXXX)
pids=()

cleanup() {
  for pid in "${pids[@]}"; do
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

[ -x "$etcd_check" ] || { echo "etcd-check.sh: error: $etcd_check is not built (make release)" >&2; exit 2; }
for tool in etcd etcdctl openssl hyperfine jq setsid; do
  command -v "$tool" >/dev/null || { echo "etcd-check.sh: error: $tool is missing (scripts/deps.sh)" >&2; exit 2; }
done

# The PKI: an etcd CA, one certificate per member for serving and peering, a client certificate.
cd "$tmp"
openssl ecparam -name prime256v1 -genkey -noout -out ca-key.pem 2>/dev/null
openssl req -x509 -new -key ca-key.pem -subj /CN=etcd-ca -days 30 -out ca.pem 2>/dev/null
leaf() { # leaf NAME EXTENSIONS
  openssl ecparam -name prime256v1 -genkey -noout -out "$1-key.pem" 2>/dev/null
  openssl req -new -key "$1-key.pem" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$2" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
for i in 1 2 3; do
  leaf "etcd-$i" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
done
leaf client "extendedKeyUsage=clientAuth"

# Ports below the ephemeral range, spread by the process id so parallel runs rarely meet.
base=$((20000 + ($$ % 1000) * 10))
cluster=""
for i in 1 2 3; do
  cluster+="${cluster:+,}etcd-$i=https://127.0.0.1:$((base + 2 * i + 1))"
done
endpoints=""
for i in 1 2 3; do
  client="https://127.0.0.1:$((base + 2 * i))"
  peer="https://127.0.0.1:$((base + 2 * i + 1))"
  endpoints+="${endpoints:+,}$client"
  # setsid: a SIGSTOPped member outside our process group gets no SIGHUP/SIGCONT from the kernel.
  setsid etcd --name "etcd-$i" --data-dir "$tmp/etcd-$i.data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$$" \
    --cert-file "etcd-$i.pem" --key-file "etcd-$i-key.pem" --client-cert-auth --trusted-ca-file ca.pem \
    --peer-cert-file "etcd-$i.pem" --peer-key-file "etcd-$i-key.pem" --peer-client-cert-auth \
    --peer-trusted-ca-file ca.pem --logger zap --log-outputs "$tmp/etcd-$i.log" \
    </dev/null >/dev/null 2>&1 &
  pids+=($!)
done

export ETCDCTL_API=3
tls="--cacert $tmp/ca.pem --cert $tmp/client.pem --key $tmp/client-key.pem"
for _ in $(seq 1 150); do
  # shellcheck disable=SC2086
  if etcdctl --endpoints "$endpoints" $tls endpoint health >/dev/null 2>&1; then break; fi
  sleep 0.2
done
# shellcheck disable=SC2086
etcdctl --endpoints "$endpoints" $tls endpoint health >/dev/null 2>&1 \
  || { echo "etcd-check.sh: error: the etcd cluster did not become healthy (logs in $tmp)" >&2; exit 3; }

ours="$etcd_check --endpoints $endpoints $tls >/dev/null"
theirs="etcdctl --endpoints $endpoints $tls endpoint health >/dev/null 2>&1; etcdctl --endpoints $endpoints $tls endpoint status >/dev/null 2>&1"

# mean_ms NAME RUNS COMMAND: hyperfine's mean in milliseconds (exit codes ignored: a degraded
# cluster is the point of the second case).
mean_ms() {
  hyperfine --style none --ignore-failure --warmup 1 --runs "$2" \
    --export-json "$tmp/$1.json" "$3" >/dev/null 2>&1 </dev/null
  jq '.results[0].mean * 1000' "$tmp/$1.json"
}

healthy_ours=$(mean_ms healthy-ours "$runs" "$ours")
healthy_theirs=$(mean_ms healthy-theirs "$runs" "$theirs")

kill -STOP -- "-${pids[2]}"
stopped_ours=$(mean_ms stopped-ours "$slow_runs" "$ours")
stopped_theirs=$(mean_ms stopped-theirs "$slow_runs" "$theirs")
kill -CONT -- "-${pids[2]}"

row() { # row CASE OURS THEIRS WHAT
  awk -v c="$1" -v a="$2" -v b="$3" -v w="$4" \
    'BEGIN { printf "| %s | %.1f ms | %.1f ms (%s) | %.2f |\n", c, a, b, w, a / b }'
}
echo "### etcd-check"
echo
echo "3-member etcd $(etcd --version | awk '/etcd Version/ {print $3}') cluster on loopback, TLS with client certificates; default --timeout 5s."
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"
row "healthy" "$healthy_ours" "$healthy_theirs" "etcdctl endpoint health + endpoint status"
row "one member black-holed (SIGSTOP)" "$stopped_ours" "$stopped_theirs" "etcdctl endpoint health + endpoint status"
