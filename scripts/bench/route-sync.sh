#!/usr/bin/env bash
# route-sync against what a user would otherwise run, in one network namespace made here, all
# side by side in one run: install then remove 10,000 pod routes, each via its own node, with
# route-sync (one nexthop object per node, routes naming it), with `ip -batch` of plain routes,
# with `ip -batch` of nexthops plus routes naming them (the kernel's floor for that form), and
# with a shell loop of `ip route add`/`del` (timed on LOOP_ROUTES routes and scaled to ROUTES:
# at several ms per `ip` process it would take a minute or more per run); a no-op resync with
# the 10,000 present against the idempotent shell way, `ip -batch` of `replace`; and one node's
# move (a new address) against one `ip nexthop replace`, both as a one-shot run and under
# `--watch` (from the document's rename to the kernel's nexthop notification, timed by
# route-sync-move.py on a netlink socket). ROUTE_SYNC_TIMING=1 runs give the steps' times.
# Prints a markdown table. Needs root, iproute2, hyperfine, jq, awk, python3.
set -euo pipefail

bin=${HARDWAY_BIN:-target/release}
route_sync=$(realpath "$bin/route-sync")
routes=${ROUTES:-10000}
loop_routes=${LOOP_ROUTES:-1000}
# Runs per case. A 10,000-route removal took 78-123 ms from one run to the next on a 2-core VM
# (the kernel's own work varies so), and the median of 5 moved by a fifth between bench runs;
# 15 holds it. The shell loops take seconds a run and are no target: 5.
runs=${RUNS:-15}
loop_runs=${LOOP_RUNS:-5}
ns=hwbench-rs-$$
tmp=$(mktemp -d)
watcher=
here=$(dirname "$(realpath "$0")")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup() {
  [ -z "$watcher" ] || kill "$watcher" 2>/dev/null || true
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
# The node that moves: the middle one, to an address no node has.
mover=$((routes / 2))
moved_ip=10.240.255.250
sed "s|\"$(node_ip "$mover")\"|\"$moved_ip\"|" "$tmp/full.json" >"$tmp/moved.json"
# route-sync numbers its nexthops from the first id of its range in pod CIDR order, which here
# is node order: node i's nexthop is first_id + i, so the batches below make exactly its objects.
first_id=$((0xC8000000))
for ((i = 0; i < routes; i++)); do
  cidr=$(pod_cidr "$i") ip=$(node_ip "$i") id=$((first_id + i))
  echo "route add $cidr via $ip proto 200" >>"$tmp/add.batch"
  echo "route del $cidr via $ip proto 200" >>"$tmp/del.batch"
  echo "route replace $cidr via $ip proto 200" >>"$tmp/replace.batch"
  echo "nexthop add id $id via $ip dev br0 proto 200" >>"$tmp/nh-objects.batch"
  echo "route add $cidr nhid $id proto 200" >>"$tmp/nh-routes.batch"
  echo "route del $cidr nhid $id proto 200" >>"$tmp/nh-del-routes.batch"
  echo "nexthop del id $id" >>"$tmp/nh-del-objects.batch"
  echo "nexthop replace id $id via $ip dev br0 proto 200" >>"$tmp/nh-replace-objects.batch"
  echo "route replace $cidr nhid $id proto 200" >>"$tmp/nh-replace-routes.batch"
done
cat "$tmp/nh-objects.batch" "$tmp/nh-routes.batch" >"$tmp/nh-add.batch"
cat "$tmp/nh-del-routes.batch" "$tmp/nh-del-objects.batch" >"$tmp/nh-del.batch"
cat "$tmp/nh-replace-objects.batch" "$tmp/nh-replace-routes.batch" >"$tmp/nh-replace.batch"
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
# Nexthops first: `ip route flush` cannot delete a route naming a nexthop (it asks by gateway,
# which the kernel refuses for such a route); deleting the nexthop takes its routes with it.
flush='ip nexthop flush proto 200 >/dev/null; ip route flush proto 200'
fill="ip -batch $tmp/add.batch"
fill_nh="ip -batch $tmp/nh-add.batch"
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
nh_batch_add=$(median_ms nh_batch_add "$flush" "ip -batch $tmp/nh-add.batch")
loop_add=$(runs=$loop_runs median_ms loop_add "$below" "sh $tmp/add-loop.sh")
rs_del=$(median_ms rs_del "$flush; $fill_nh" "$route_sync --host -f $tmp/empty.json")
batch_del=$(median_ms batch_del "$flush; $fill" "ip -batch $tmp/del.batch")
nh_batch_del=$(median_ms nh_batch_del "$flush; $fill_nh" "ip -batch $tmp/nh-del.batch")
loop_del=$(runs=$loop_runs median_ms loop_del "$through" "sh $tmp/del-loop.sh")
# The no-ops change nothing: fill once; the quick ones get more runs.
in_ns sh -c "$flush; $fill_nh"
change_runs=$runs
runs=$((runs * 4))
rs_noop=$(median_ms rs_noop true "$route_sync --host -f $tmp/full.json")
# One node moves: each run starts from its old address.
mover_id=$((first_id + mover))
back="ip nexthop replace id $mover_id via $(node_ip "$mover") dev br0 proto 200"
rs_move=$(median_ms rs_move "$back" "$route_sync --host -f $tmp/moved.json")
ip_move=$(median_ms ip_move "$back" "ip nexthop replace id $mover_id via $moved_ip dev br0 proto 200")
in_ns sh -c "$back"
# Where a no-op's time goes: ROUTE_SYNC_TIMING's steps, median over the runs.
for ((i = 0; i < runs; i++)); do
  ROUTE_SYNC_TIMING=1 in_ns "$route_sync" --host -f "$tmp/full.json" 2>&1 >/dev/null | grep ' timing: '
done >"$tmp/noop-steps.txt"
# The move under --watch: the watcher's first pass syncs nothing, then each rename moves the node
# there and back.
cp "$tmp/full.json" "$tmp/watch.json"
ROUTE_SYNC_TIMING=1 ip netns exec "$ns" "$route_sync" --host --watch 3600 -f "$tmp/watch.json" \
  >/dev/null 2>"$tmp/watch.err" &
watcher=$!
for ((i = 0; i < 100; i++)); do
  grep -q ' timing: pass ' "$tmp/watch.err" && break
  sleep 0.1
done
grep -q ' timing: pass ' "$tmp/watch.err" || { echo "route-sync.sh: error: the watcher did no pass" >&2; exit 1; }
: >"$tmp/watch-first.err"
cp "$tmp/watch.err" "$tmp/watch-first.err"
in_ns python3 "$here/route-sync-move.py" "$tmp/watch.json" "$tmp/full.json" "$tmp/moved.json" \
  "$mover_id" "$runs" >"$tmp/watch-move.txt"
kill "$watcher"
wait "$watcher" 2>/dev/null || true
watcher=
# The steps of the passes after the first.
tail -n +"$(($(wc -l <"$tmp/watch-first.err") + 1))" "$tmp/watch.err" | grep ' timing: ' >"$tmp/watch-steps.txt" || true
watch_move=$(sort -n "$tmp/watch-move.txt" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
in_ns sh -c "$back"
quick_runs=$runs
runs=$change_runs
nh_batch_noop=$(median_ms nh_batch_noop true "ip -batch $tmp/nh-replace.batch")
in_ns sh -c "$flush; $fill"
batch_noop=$(median_ms batch_noop true "ip -batch $tmp/replace.batch")

# Check that route-sync leaves exactly the routes and nexthops it should: converge from the
# plain routes (replaced in place), then a run changes nothing.
in_ns "$route_sync" --host -f "$tmp/full.json" >/dev/null 2>&1
have=$(in_ns ip route show proto 200 | grep -c nhid || true)
objects=$(in_ns ip nexthop show proto 200 | wc -l)
[ "$have" -eq "$routes" ] && [ "$objects" -eq "$routes" ] || {
  echo "route-sync.sh: error: $have routes naming nexthops and $objects nexthops, expected $routes" >&2
  exit 1
}
changes=$(in_ns "$route_sync" --host -f "$tmp/full.json" 2>/dev/null |
  jq '[.added, .replaced, .removed, .nexthops.added, .nexthops.replaced, .nexthops.removed] | map(length) | add')
[ "$changes" -eq 0 ] || { echo "route-sync.sh: error: a second run made $changes changes" >&2; exit 1; }

calc() { awk "BEGIN { print $1 }"; }
# steps FILE: "step median-ms" for each ROUTE_SYNC_TIMING step in FILE, in the order first seen.
steps() {
  sed 's/^route-sync: timing: //; s/ ms$//' "$1" | awk '
    { n = $NF; $NF = ""; sub(/ $/, ""); if (!($0 in count)) order[++k] = $0; v[$0, ++count[$0]] = n }
    END {
      for (i = 1; i <= k; i++) {
        s = order[i]; c = count[s]
        for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[s, b] < v[s, a]) { t = v[s, a]; v[s, a] = v[s, b]; v[s, b] = t }
        m = (c % 2) ? v[s, (c + 1) / 2] : (v[s, c / 2] + v[s, c / 2 + 1]) / 2
        printf "%s%s %.1f", (i > 1 ? ", " : ""), s, m
      }
      print ""
    }'
}
cpu_ms() { jq '(.results[0].user + .results[0].system) * 1000' "$tmp/$1.json"; }
scale=$(calc "$routes / $loop_routes")
row() { # case, hardway ms, alternative ms, what
  printf '| %s | %.1f | %.1f (%s) | %.3f |\n' "$1" "$2" "$3" "$4" "$(calc "$2 / $3")"
}
echo "### route-sync"
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"
row "install $routes routes" "$rs_add" "$batch_add" "ip -batch route add, plain routes"
row "install $routes routes" "$rs_add" "$nh_batch_add" "ip -batch nexthop add + route add nhid"
row "install $routes routes" "$rs_add" "$(calc "$loop_add * $scale")" "shell loop of ip route add, $loop_routes mid-table timed ×$(printf %.0f "$scale")"
row "remove $routes routes" "$rs_del" "$batch_del" "ip -batch route del, plain routes"
row "remove $routes routes" "$rs_del" "$nh_batch_del" "ip -batch route del nhid + nexthop del"
row "remove $routes routes" "$rs_del" "$(calc "$loop_del * $scale")" "shell loop of ip route del, $loop_routes mid-table timed ×$(printf %.0f "$scale")"
row "no-op resync, $routes present" "$rs_noop" "$batch_noop" "ip -batch route replace, plain routes"
row "no-op resync, $routes present" "$rs_noop" "$nh_batch_noop" "ip -batch nexthop replace + route replace"
row "one node's move, $routes present, one run" "$rs_move" "$ip_move" "one ip nexthop replace"
row "one node's move, $routes present, --watch" "$watch_move" "$ip_move" "one ip nexthop replace"
echo
echo "Medians of $runs runs ($loop_runs for the shell loops, $((runs * 4)) for route-sync's no-op and the one-run move) with hyperfine, in one network"
echo "namespace; times in ms; ratio = hardway / alternative. route-sync makes one nexthop object per node and"
echo "routes naming it (nhid); each node has its own address. A plain route via its own gateway makes the kernel"
echo "walk one hash bucket holding every such route (fib_create_info), about 2 s for 10,000 whoever sends them;"
echo "a route naming a nexthop skips that."
echo
printf 'The no-op is a whole process: start, read and parse the %s-node document (on a second thread) while\n' "$routes"
echo "the kernel's routes are dumped on one socket (IPv4, then IPv6) and its nexthops, addresses and links on a"
echo "second, each on a thread of its own, plan, exit. Its CPU time"
printf '(user + system) was %.1f ms; its steps (ROUTE_SYNC_TIMING=1, medians of %s runs, ms): %s.\n' \
  "$(cpu_ms rs_noop)" "$quick_runs" "$(steps "$tmp/noop-steps.txt")"
echo "The one-run move is the same plus one nexthop replace. The --watch move is timed by"
echo "scripts/bench/route-sync-move.py from the rename of a new document over the watched file to the kernel's"
printf 'netlink notification that the node'"'"'s nexthop changed (median of %s, alternating there and back). It\n' "$quick_runs"
echo "includes the inotify wake-up, reading the file and comparing it with the last one (only one node's object"
echo "changed, so only that node is parsed and checked: src/edit.rs), the plan against the tables the watcher"
echo "kept (no dump: only another process's change makes it dump again), the one nexthop replace and the"
echo "notification's delivery; it does not include writing the new file. Its steps (medians, ms):"
printf '%s.\n' "$(steps "$tmp/watch-steps.txt")"
echo
printf 'Load average (1, 5, 15 min) when the section started: %s; when it ended: %s, on %s cores.\n' \
  "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
