#!/usr/bin/env bash
# make lab / make lab-down / make lab-restore: the whole pipeline without VMs, in a few seconds.
#
# up, no lab running: for the inventory (examples/lab.csv) mkcluster -> cidr-alloc -> mkcerts ->
# mkunits, then one network namespace per node joined by a bridge that holds the hypervisor's
# gateway address, etcd started in each namespace from the etcd.service mkunits wrote (its
# ExecStart, its certificates), etcd-sync recording the members, route-sync --node in each
# namespace and --host here, then checks: etcd-check healthy, every node pings every other node's
# pod gateway, mkcerts check clean. The lab stays up until `make lab-down`.
#
# up, a lab running (make lab INVENTORY=FILE after editing it): the same pipeline with etcd-sync
# before mkunits, keeping the running document's addresses and members. A new etcd node is added
# as a learner, started from its unit (--initial-cluster-state=existing) and promoted; a node the
# inventory dropped leaves etcd (etcd-sync removes it), then its process and namespace go; a node
# whose address changed leaves first and joins again at its new address (remove + add: etcd-sync
# treats a new peer URL as a new member, see the README's "The lab follows edits"); routes follow
# (route-sync everywhere). Members nobody added or removed are left running, untouched.
#
# restore (make lab-restore SNAPSHOT=FILE): stops every member, has etcd-snapshot restore write
# each node's restore script, runs it on the member's data directory, starts the members again
# and records their new IDs (etcd-sync).
#
# Environment: INVENTORY (default examples/lab.csv), MKCLUSTER_FLAGS (default --name lab), LAB_DIR
# (default ./lab), HARDWAY_BIN (default target/debug), LAB_NAME (namespace and bridge prefix,
# default hwlab), LAB_NO_BUILD=1 to skip the package install and build (tests do that
# themselves), SNAPSHOT (restore).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
INVENTORY=${INVENTORY:-examples/lab.csv}
LAB_DIR=${LAB_DIR:-$root/lab}
LAB_NAME=${LAB_NAME:-hwlab}
BIN=${HARDWAY_BIN:-$root/target/debug}
export PATH="$BIN:$PATH"
bridge="${LAB_NAME}0"
doc="$LAB_DIR/cluster.json"
out="$LAB_DIR/out"

say() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit "${2:-3}"; }

# Veth names are limited to 15 characters: derive a short stable one from the node name.
veth_of() { printf '%s%s' "${LAB_NAME:0:4}" "$(printf '%s' "$1" | sha256sum | cut -c1-8)"; }

# A field of one node of the running document (a jq path such as .ips[0]).
node_field() { jq -r --arg n "$1" ".nodes[] | select(.name == \$n) | $2" "$doc"; }
node_names() { jq -r '.nodes[].name' "$doc"; }
etcd_names() { jq -r '.nodes[] | select(.roles | index("etcd")) | .name' "$doc"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# A lab runs when its bridge, its document and at least one etcd member are there.
running() {
  [ -f "$doc" ] && ip link show "$bridge" >/dev/null 2>&1 || return 1
  local pidfile
  for pidfile in "$LAB_DIR"/run/etcd-*.pid; do
    pid_alive "$pidfile" && return 0
  done
  return 1
}

stop_member() {
  local pidfile="$LAB_DIR/run/etcd-$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

down() {
  if [ -d "$LAB_DIR/run" ]; then
    local pidfile
    for pidfile in "$LAB_DIR"/run/etcd-*.pid; do
      [ -e "$pidfile" ] || continue
      stop_member "$(basename "$pidfile" .pid | sed 's/^etcd-//')"
    done
  fi
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^${LAB_NAME}-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns"
  done
  if ip link show "$bridge" >/dev/null 2>&1; then
    ip link delete "$bridge"
  fi
  # Routes through the bridge went with it; any left by route-sync on other devices are its own.
  rm -rf "$LAB_DIR/run" "$LAB_DIR/data"
  say "down: no namespace, process or bridge of ${LAB_NAME} is left"
}

# The pipeline's first half: the inventory's addresses, keeping those of the running document.
addresses() {
  local flags=${MKCLUSTER_FLAGS:---name lab}
  # shellcheck disable=SC2086
  mkcluster $flags "$INVENTORY" | cidr-alloc --previous "$doc"
}

# The ExecStart of a unit as one line, with the node's paths mapped to this machine's files.
exec_start_local() {
  local node=$1 unit=$2
  local src
  src=$(node_field "$node" ".files[] | select(.dest | endswith(\"/$unit\")) | .src")
  [ -n "$src" ] || die "node $node has no $unit in its files: did mkunits run?"
  local line dest file
  line=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$out/$src" | sed -n 's/^ExecStart=//p' | head -1)
  # Each file the node gets is at $out/<src> here.
  while IFS=$'\t' read -r dest file; do
    line=${line//"$dest"/"$out/$file"}
  done < <(node_field "$node" '.files[] | [.dest, .src] | @tsv')
  printf '%s\n' "$line"
}

make_bridge() {
  local gateway prefix
  gateway=$(jq -r '.hypervisor.gateway' "$doc")
  prefix=$(jq -r '.cluster.networks.node[0] | split("/")[1]' "$doc")
  ip link add "$bridge" type bridge
  ip addr add "$gateway/$prefix" dev "$bridge"
  ip link set "$bridge" up
}

# The node's namespace on the bridge with its address, and its pod network: a bridge holding the
# first address of each pod CIDR (as cni0 would).
add_node() {
  local node=$1 ns="$LAB_NAME-$1" veth ip prefix pod first
  veth=$(veth_of "$node")
  ip=$(node_field "$node" '.ips[0]')
  prefix=$(jq -r '.cluster.networks.node[0] | split("/")[1]' "$doc")
  ip netns add "$ns"
  ip link add "$veth" type veth peer name eth0 netns "$ns"
  ip link set "$veth" master "$bridge" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/$prefix" dev eth0
  ip -n "$ns" link set eth0 up
  for pod in $(node_field "$node" '.pod_cidrs[]'); do
    ip -n "$ns" link show cni0 >/dev/null 2>&1 || ip -n "$ns" link add cni0 type bridge
    first=$(python3 -c 'import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(f"{n.network_address+1}/{n.prefixlen}")' "$pod")
    # nodad: an IPv6 gateway is usable at once instead of after duplicate address detection.
    case "$first" in *:*) ip -n "$ns" addr add "$first" dev cni0 nodad ;; *) ip -n "$ns" addr add "$first" dev cni0 ;; esac
    ip -n "$ns" link set cni0 up
  done
}

# A node gone from the lab: its processes, its namespace (the veth goes with it), its data.
remove_node() {
  local node=$1 ns="$LAB_NAME-$1"
  stop_member "$node"
  if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns"
  fi
  # The namespace goes once its last process has: wait for its veth, whose name may come back.
  local veth
  veth=$(veth_of "$node")
  for _ in $(seq 50); do ip link show "$veth" >/dev/null 2>&1 || break; sleep 0.1; done
  rm -rf "$LAB_DIR/data/$node" "$LAB_DIR/run/route-sync-$node.json"
}

# etcd in the node's namespace from its etcd.service, as systemd would start it.
start_member() {
  local node=$1 line
  line=$(exec_start_local "$node" etcd.service)
  line=${line//\/var\/lib\/etcd/$LAB_DIR/data/$node}
  mkdir -p "$LAB_DIR/data/$node" && chmod 0700 "$LAB_DIR/data/$node"
  # setsid: a member must not share the lab's process group (docs/ARCHITECTURE.md).
  # shellcheck disable=SC2086
  ip netns exec "$LAB_NAME-$node" setsid $line >> "$LAB_DIR/run/etcd-$node.log" 2>&1 < /dev/null &
  echo $! > "$LAB_DIR/run/etcd-$node.pid"
}

# etcd-sync until etcd's members match the document: a learner started since is promoted (etcd-
# sync retries until it has caught up), then the members the document dropped are removed. Each
# run's document is kept, so the records follow.
sync_members() {
  for _ in $(seq 60); do
    etcd-sync -f "$doc" --dir "$out" > "$doc.new"
    mv "$doc.new" "$doc"
    if etcd-sync -f "$doc" --dir "$out" --check > "$LAB_DIR/run/etcd-sync.json" 2>/dev/null; then
      return 0
    fi
    sleep 1
  done
  die "etcd's members still differ from the document: etcd-sync -f $doc --dir $out --check -o table"
}

routes() {
  local node
  for node in $(node_names); do
    ip netns exec "$LAB_NAME-$node" route-sync --node "$node" -f "$doc" > "$LAB_DIR/run/route-sync-$node.json"
  done
  route-sync --host -f "$doc" > "$LAB_DIR/run/route-sync-host.json"
}

# Waits for etcd-check to say healthy; the exit code of its last verdict.
wait_healthy() {
  local health=3
  for _ in $(seq 60); do
    if etcd-check -f "$doc" --dir "$out" --timeout 2s > "$LAB_DIR/run/etcd-check.json" 2>"$LAB_DIR/run/etcd-check.err"; then
      return 0
    else
      health=$?
    fi
    sleep 0.5
  done
  return "$health"
}

# The checks and the summary both paths end with; fails unless all pass.
report() {
  local start=$1 health=0
  say "health: waiting for etcd-check to say healthy"
  wait_healthy || health=$?
  local nodes from to gw pings_ok=0 pings=0
  mapfile -t nodes < <(node_names)
  for from in "${nodes[@]}"; do
    for to in "${nodes[@]}"; do
      [ "$from" = "$to" ] && continue
      for gw in $(node_field "$to" '.pod_cidrs[] | select(contains(".")) | split("/")[0]'); do
        gw=${gw%.0}.1
        pings=$((pings + 1))
        ip netns exec "$LAB_NAME-$from" ping -c1 -W2 "$gw" >/dev/null 2>&1 && pings_ok=$((pings_ok + 1))
      done
    done
  done
  local certs=0
  mkcerts check --dir "$out" > "$LAB_DIR/run/mkcerts-check.json" || certs=$?

  echo
  etcd-check -f "$doc" --dir "$out" -o table 2>/dev/null || true
  echo
  printf '%-28s %s\n' "etcd-check" "$([ $health -eq 0 ] && echo healthy || echo "exit $health (see $LAB_DIR/run/)")"
  printf '%-28s %s\n' "pod gateway pings" "$pings_ok/$pings"
  printf '%-28s %s\n' "mkcerts check" "$([ $certs -eq 0 ] && echo clean || echo "exit $certs")"
  printf '%-28s %s s\n' "time after build" "$((SECONDS - start))"
  echo "The lab is up: 'make lab-down' removes it. Files in $LAB_DIR."
  # shellcheck source=scripts/pictures.sh
  . "$root/scripts/pictures.sh" && draw_pictures "$doc"
  [ $health -eq 0 ] && [ $pings_ok -eq $pings ] && [ $certs -eq 0 ]
}

# No lab running: build it from nothing.
fresh() {
  down >/dev/null 2>&1 || true
  mkdir -p "$LAB_DIR/run" "$LAB_DIR/data"
  say "pipeline: mkcluster | cidr-alloc | mkcerts | mkunits"
  addresses | mkcerts --dir "$out" | mkunits --dir "$out" --bin-dir "$BIN" > "$doc.new"
  mv "$doc.new" "$doc"
  make_bridge
  local node
  for node in $(node_names); do add_node "$node"; done
  say "etcd: starting $(etcd_names | wc -l) members from their etcd.service"
  for node in $(etcd_names); do start_member "$node"; done
  say "etcd: recording the members (etcd-sync), so a later run adds and removes instead"
  wait_healthy || die "etcd did not become healthy: see $LAB_DIR/run/"
  sync_members
  say "routes: route-sync --node in each namespace, --host here"
  routes
}

# The nodes of the running document whose address the next document ($1) changes.
moved_nodes() {
  jq -r --slurpfile next "$1" \
    '.nodes[] as $old | $next[0].nodes[] | select(.name == $old.name and .ips != $old.ips) | .name' "$doc"
}

# Nodes whose address changes leave first: the document without them goes through etcd-sync
# (which removes their members), then their processes and namespaces go. They join again at their
# new address like any new node.
leave() {
  say "moving $*: each leaves etcd, then joins again at its new address"
  local gone node
  gone=$(printf '%s\n' "$@" | jq -R . | jq -s .)
  jq --argjson gone "$gone" 'del(.nodes[] | select(.name | IN($gone[])))' "$doc" \
    | etcd-sync --dir "$out" > "$doc.new"
  mv "$doc.new" "$doc"
  for node in "$@"; do remove_node "$node"; done
}

# A lab running: apply the inventory to it.
apply() {
  say "applying $INVENTORY to the running lab"
  local next="$LAB_DIR/run/next.json" before moved node
  addresses > "$next"
  mapfile -t before < <(node_names)
  mapfile -t moved < <(moved_nodes "$next")
  [ ${#moved[@]} -eq 0 ] || leave "${moved[@]}"
  say "pipeline: mkcluster | cidr-alloc --previous | mkcerts | etcd-sync --previous | mkunits --previous"
  mkcerts --dir "$out" < "$next" \
    | etcd-sync --dir "$out" --previous "$doc" \
    | mkunits --dir "$out" --bin-dir "$BIN" --previous "$doc" > "$doc.new"
  mv "$doc.new" "$doc"
  for node in $(node_names); do
    ip netns list | awk '{print $1}' | grep -qx "$LAB_NAME-$node" || add_node "$node"
  done
  for node in $(etcd_names); do
    pid_alive "$LAB_DIR/run/etcd-$node.pid" || { say "etcd: starting $node"; start_member "$node"; }
  done
  say "etcd: etcd-sync until the members match the document"
  sync_members
  for node in "${before[@]}"; do
    [ -n "$(node_field "$node" .name)" ] || { say "removing $node"; remove_node "$node"; }
  done
  say "routes: route-sync --node in each namespace, --host here"
  routes
}

# Every member rebuilt from one snapshot with the document's membership.
restore() {
  running || die "no lab is running: make lab first" 2
  [ -f "${SNAPSHOT:-}" ] || die "no snapshot at '${SNAPSHOT:-}': give SNAPSHOT=FILE (etcd-snapshot save -f $doc --dir $out)" 2
  local start=$SECONDS restored="$LAB_DIR/run/restored.json" node data
  say "restore: stopping every etcd member"
  for node in $(etcd_names); do stop_member "$node"; done
  if ! etcd-snapshot restore -f "$doc" --dir "$out" --snapshot "$SNAPSHOT" > "$restored"; then
    for node in $(etcd_names); do start_member "$node"; done
    wait_healthy || die "etcd-snapshot restore failed (above), and the members started again did not become healthy: see $LAB_DIR/run/"
    die "etcd-snapshot restore failed (above): the members were started again as they were"
  fi
  mv "$restored" "$doc"
  for node in $(etcd_names); do
    data="$LAB_DIR/data/$node"
    # Asked for now: an earlier restore's marker (which makes a node's unit restore only once)
    # and the data it kept aside go, so the script restores and keeps this one's.
    rm -rf "$data".restored-* "$data".before-restore-*
    # The script the node's hardway-etcd-restore.service runs, on the lab's data directory.
    SNAPSHOT="$out/$(node_field "$node" '.files[] | select(.dest == "/var/lib/hardway-etcd-restore/snapshot.db") | .src')" \
      ETCD_DATA_DIR="$data" ETCDCTL=etcdctl \
      sh "$out/$(node_field "$node" '.files[] | select(.dest == "/usr/local/sbin/hardway-etcd-restore") | .src')" \
      >> "$LAB_DIR/run/restore-$node.log" 2>&1 || die "restoring $node failed: see $LAB_DIR/run/restore-$node.log"
  done
  say "restore: starting the members on the restored data"
  for node in $(etcd_names); do start_member "$node"; done
  wait_healthy || die "etcd did not become healthy after the restore: see $LAB_DIR/run/"
  say "restore: recording the members' new IDs (etcd-sync)"
  sync_members
  report "$start"
}

up() {
  if [ -z "${LAB_NO_BUILD:-}" ]; then
    [ "$(id -u)" -eq 0 ] || die "make lab needs root (network namespaces, routes)" 2
    bash scripts/deps.sh
    cargo build --workspace --bins -q
  fi
  [ -f "$INVENTORY" ] || die "no inventory at $INVENTORY" 2
  local start=$SECONDS
  if running; then apply; else fresh; fi
  report "$start"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  restore) restore ;;
  *) die "usage: lab.sh up|down|restore" 2 ;;
esac
