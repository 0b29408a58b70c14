#!/usr/bin/env bash
# route-sync against what a user would otherwise run, in one network namespace made here:
# install then remove 10,000 pod routes with route-sync, with `ip -batch`, and with a shell loop
# of `ip route add`/`del` (the loop is timed on LOOP_ROUTES routes and scaled to ROUTES: at
# several ms per `ip` process it would take a minute or more per run); and a no-op resync with
# the 10,000 present against the idempotent shell way, `ip -batch` of `route replace`.
# Prints a markdown table. Needs root, iproute2, hyperfine, jq, awk.
set -euo pipefail

bin=${HARDWAY_BIN:-target/release}
route_sync=$(realpath "$bin/route-sync")
routes=${ROUTES:-10000}
loop_routes=${LOOP_ROUTES:-1000}
runs=${RUNS:-5}
ns=hwbench-rs-$$
tmp=$(mktemp -d)

cleanup() {
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "route-sync.sh: error: needs root (network namespaces)" >&2; exit 2; }
[ -x "$route_sync" ] || { echo "route-sync.sh: error: $route_sync is not built (make release)" >&2; exit 2; }

# The hypervisor: one bridge holding a /16 of node addresses.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" addr add 10.240.0.1/16 dev br0
ip -n "$ns" link set br0 up

# Node i: address 10.240.(i/250).(i%250+2), pod CIDR 10.(100+i/256).(i%256).0/24.
node_ip() { echo "10.240.$(($1 / 250)).$(($1 % 250 + 2))"; }
pod_cidr() { echo "10.$((100 + $1 / 256)).$(($1 % 256)).0/24"; }

# A cluster document with $1 worker nodes (the shape of tests/fixtures/lab.json).
document() {
  local n=$1 i sep=""
  printf '{"version":1,"cluster":{"name":"bench","domain":"example.com","cluster_domain":"cluster.local",'
  printf '"kubernetes_version":"v1.32.3","networks":{"node":["10.240.0.0/16"],"pod":["10.96.0.0/11"],'
  printf '"pod_prefix":[24],"service":["10.32.0.0/24"]},"api":{"port":6443},"pod_network":"routes"},"nodes":['
  for ((i = 0; i < n; i++)); do
    printf '%s{"name":"n%d","roles":["worker"],"ips":["%s"],"pod_cidrs":["%s"],"vcpus":1,"memory_mib":512,"disk_gib":4,"host":null}' \
      "$sep" "$i" "$(node_ip "$i")" "$(pod_cidr "$i")"
    sep=","
  done
  printf ']}\n'
}

document "$routes" >"$tmp/full.json"
document 0 >"$tmp/empty.json"
for ((i = 0; i < routes; i++)); do
  echo "route add $(pod_cidr "$i") via $(node_ip "$i") proto 200" >>"$tmp/add.batch"
  echo "route del $(pod_cidr "$i") via $(node_ip "$i") proto 200" >>"$tmp/del.batch"
  echo "route replace $(pod_cidr "$i") via $(node_ip "$i") proto 200" >>"$tmp/replace.batch"
done
# The loop runs on LOOP_ROUTES routes in the middle of the table: the kernel's cost of adding a
# route grows with the routes already there (the same gateway-blind hash bucket holds them all),
# so the middle stretch times the average route and scaling it by ROUTES/LOOP_ROUTES is fair.
first=$(((routes - loop_routes) / 2))
middle="$((first + 1)),$((first + loop_routes))p"
{ echo 'set -e'; sed -n "$middle" "$tmp/add.batch" | sed 's/^/ip /'; } >"$tmp/add-loop.sh"
{ echo 'set -e'; sed -n "$middle" "$tmp/del.batch" | sed 's/^/ip /'; } >"$tmp/del-loop.sh"
head -n "$first" "$tmp/add.batch" >"$tmp/below.batch"
head -n "$((first + loop_routes))" "$tmp/add.batch" >"$tmp/through.batch"

# Everything below runs inside the namespace, so no command pays for entering it.
in_ns() { ip netns exec "$ns" "$@"; }
flush='ip route flush proto 200'
fill="ip -batch $tmp/add.batch"
below="$flush; ip -batch $tmp/below.batch"
through="$flush; ip -batch $tmp/through.batch"

# median_ms NAME PREPARE COMMAND: hyperfine's median in milliseconds.
median_ms() {
  local name=$1 prepare=$2 command=$3
  in_ns hyperfine --style none --runs "$runs" --prepare "$prepare" \
    --export-json "$tmp/$name.json" "$command" >/dev/null 2>&1 </dev/null
  jq '.results[0].median * 1000' "$tmp/$name.json"
}

rs_add=$(median_ms rs_add "$flush" "$route_sync --host -f $tmp/full.json")
batch_add=$(median_ms batch_add "$flush" "ip -batch $tmp/add.batch")
loop_add=$(median_ms loop_add "$below" "sh $tmp/add-loop.sh")
rs_del=$(median_ms rs_del "$flush; $fill" "$route_sync --host -f $tmp/empty.json")
batch_del=$(median_ms batch_del "$flush; $fill" "ip -batch $tmp/del.batch")
loop_del=$(median_ms loop_del "$through" "sh $tmp/del-loop.sh")
# Neither no-op changes the table: fill it once; the quick one gets more runs.
in_ns sh -c "$flush; $fill"
change_runs=$runs
runs=$((runs * 4))
rs_noop=$(median_ms rs_noop true "$route_sync --host -f $tmp/full.json")
runs=$change_runs
batch_noop=$(median_ms batch_noop true "ip -batch $tmp/replace.batch")

# Check that the last route-sync run left exactly the routes it should have.
have=$(in_ns ip route show proto 200 | wc -l)
[ "$have" -eq "$routes" ] || { echo "route-sync.sh: error: $have routes after the no-op, expected $routes" >&2; exit 1; }

calc() { awk "BEGIN { print $1 }"; }
scale=$(calc "$routes / $loop_routes")
row() { # case, hardway ms, alternative ms, what
  printf '| %s | %.1f | %.1f (%s) | %.3f |\n' "$1" "$2" "$3" "$4" "$(calc "$2 / $3")"
}
echo "### route-sync"
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"
row "install $routes routes" "$rs_add" "$batch_add" "ip -batch route add"
row "install $routes routes" "$rs_add" "$(calc "$loop_add * $scale")" "shell loop of ip route add, $loop_routes mid-table timed ×$(printf %.0f "$scale")"
row "remove $routes routes" "$rs_del" "$batch_del" "ip -batch route del"
row "remove $routes routes" "$rs_del" "$(calc "$loop_del * $scale")" "shell loop of ip route del, $loop_routes mid-table timed ×$(printf %.0f "$scale")"
row "no-op resync, $routes present" "$rs_noop" "$batch_noop" "ip -batch route replace"
echo
echo "Medians of $runs runs ($((runs * 4)) for route-sync's no-op) with hyperfine, in one network namespace; times in ms;"
echo "ratio = hardway / alternative. Each route has its own gateway, as each node has its own address: the kernel"
echo "finds a new route's nexthop info by walking one hash bucket that holds every such route (fib_create_info),"
echo "so adding the 10,000 costs the kernel about 2 s whoever asks; that is ~90% of route-sync's install time."
