#!/usr/bin/env bash
# make lab / make lab-down: the whole pipeline without VMs, in a few seconds.
#
# For the inventory (examples/lab.csv): mkcluster -> cidr-alloc -> mkcerts -> mkunits, then one
# network namespace per node joined by a bridge that holds the hypervisor's gateway address, etcd
# started in each namespace from the etcd.service mkunits wrote (its ExecStart, its certificates),
# route-sync --node in each namespace and --host here, then checks: etcd-check healthy, every node
# pings every other node's pod gateway, mkcerts check clean. The lab stays up until `make lab-down`.
#
# Environment: INVENTORY (default examples/lab.csv), MKCLUSTER_FLAGS (default --name lab), LAB_DIR (default ./lab), HARDWAY_BIN (default
# target/debug), LAB_NAME (namespace and bridge prefix, default hwlab), LAB_NO_BUILD=1 to skip the
# package install and build (tests do that themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
INVENTORY=${INVENTORY:-examples/lab.csv}
LAB_DIR=${LAB_DIR:-$root/lab}
LAB_NAME=${LAB_NAME:-hwlab}
BIN=${HARDWAY_BIN:-$root/target/debug}
export PATH="$BIN:$PATH"
bridge="${LAB_NAME}0"

say() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit "${2:-3}"; }

# Veth names are limited to 15 characters: derive a short stable one from the node name.
veth_of() { printf '%s%s' "${LAB_NAME:0:4}" "$(printf '%s' "$1" | sha256sum | cut -c1-8)"; }

down() {
  if [ -d "$LAB_DIR/run" ]; then
    for pidfile in "$LAB_DIR"/run/*.pid; do
      [ -e "$pidfile" ] || continue
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    done
  fi
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

# The ExecStart of a unit as one line, with the node's paths mapped to this machine's files.
exec_start_local() {
  local node=$1 unit=$2 doc=$3 out=$4
  local src
  src=$(jq -r --arg n "$node" --arg u "$unit" \
    '.nodes[] | select(.name == $n) | .files[] | select(.dest | endswith("/" + $u)) | .src' "$doc")
  [ -n "$src" ] || die "node $node has no $unit in its files: did mkunits run?"
  local line
  line=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$out/$src" | sed -n 's/^ExecStart=//p' | head -1)
  # Each file the node gets is at $out/<src> here.
  while IFS=$'\t' read -r dest file; do
    line=${line//"$dest"/"$out/$file"}
  done < <(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .files[] | [.dest, .src] | @tsv' "$doc")
  printf '%s\n' "$line"
}

up() {
  if [ -z "${LAB_NO_BUILD:-}" ]; then
    [ "$(id -u)" -eq 0 ] || die "make lab needs root (network namespaces, routes)" 2
    bash scripts/deps.sh
    cargo build --workspace --bins -q
  fi
  [ -f "$INVENTORY" ] || die "no inventory at $INVENTORY" 2
  local start=$SECONDS
  down >/dev/null 2>&1 || true
  mkdir -p "$LAB_DIR/run" "$LAB_DIR/data"
  local doc="$LAB_DIR/cluster.json" out="$LAB_DIR/out"

  say "pipeline: mkcluster | cidr-alloc | mkcerts | mkunits"
  local flags=${MKCLUSTER_FLAGS:---name lab}
  # shellcheck disable=SC2086
  mkcluster $flags "$INVENTORY" \
    | cidr-alloc --previous "$doc" \
    | mkcerts --dir "$out" \
    | mkunits --dir "$out" --bin-dir "$BIN" > "$doc.new"
  mv "$doc.new" "$doc"

  local gateway prefix
  gateway=$(jq -r '.hypervisor.gateway' "$doc")
  prefix=$(jq -r '.cluster.networks.node[0] | split("/")[1]' "$doc")
  ip link add "$bridge" type bridge
  ip addr add "$gateway/$prefix" dev "$bridge"
  ip link set "$bridge" up

  local nodes
  mapfile -t nodes < <(jq -r '.nodes[].name' "$doc")
  for node in "${nodes[@]}"; do
    local ns="$LAB_NAME-$node" veth ip pod
    veth=$(veth_of "$node")
    ip=$(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .ips[0]' "$doc")
    ip netns add "$ns"
    ip link add "$veth" type veth peer name eth0 netns "$ns"
    ip link set "$veth" master "$bridge" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$ip/$prefix" dev eth0
    ip -n "$ns" link set eth0 up
    # The node's pod network: a bridge holding the first address of its pod CIDR (as cni0 would).
    for pod in $(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .pod_cidrs[]' "$doc"); do
      ip -n "$ns" link show cni0 >/dev/null 2>&1 || ip -n "$ns" link add cni0 type bridge
      local first
      first=$(python3 -c 'import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print(f"{n.network_address+1}/{n.prefixlen}")' "$pod")
      # nodad: an IPv6 gateway is usable at once instead of after duplicate address detection.
      case "$first" in *:*) ip -n "$ns" addr add "$first" dev cni0 nodad ;; *) ip -n "$ns" addr add "$first" dev cni0 ;; esac
      ip -n "$ns" link set cni0 up
    done
  done

  say "etcd: starting ${#nodes[@]} members from their etcd.service"
  for node in $(jq -r '.nodes[] | select(.roles | index("etcd")) | .name' "$doc"); do
    local line
    line=$(exec_start_local "$node" etcd.service "$doc" "$out")
    line=${line//\/var\/lib\/etcd/$LAB_DIR/data/$node}
    mkdir -p "$LAB_DIR/data/$node" && chmod 0700 "$LAB_DIR/data/$node"
    # setsid: a member must not share the lab's process group (docs/ARCHITECTURE.md).
    # shellcheck disable=SC2086
    ip netns exec "$LAB_NAME-$node" setsid $line > "$LAB_DIR/run/etcd-$node.log" 2>&1 < /dev/null &
    echo $! > "$LAB_DIR/run/etcd-$node.pid"
  done

  say "routes: route-sync --node in each namespace, --host here"
  for node in "${nodes[@]}"; do
    ip netns exec "$LAB_NAME-$node" route-sync --node "$node" -f "$doc" > "$LAB_DIR/run/route-sync-$node.json"
  done
  route-sync --host -f "$doc" > "$LAB_DIR/run/route-sync-host.json"

  say "health: waiting for etcd-check to say healthy"
  local health=3
  for _ in $(seq 60); do
    if etcd-check -f "$doc" --dir "$out" --timeout 2s > "$LAB_DIR/run/etcd-check.json" 2>"$LAB_DIR/run/etcd-check.err"; then
      health=0; break
    else
      health=$?
    fi
    sleep 0.5
  done

  local pings_ok=0 pings=0
  for from in "${nodes[@]}"; do
    for to in "${nodes[@]}"; do
      [ "$from" = "$to" ] && continue
      for gw in $(jq -r --arg n "$to" '.nodes[] | select(.name == $n) | .pod_cidrs[] | select(contains(".")) | split("/")[0]' "$doc"); do
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

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) die "usage: lab.sh up|down" 2 ;;
esac
