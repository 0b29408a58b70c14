#!/usr/bin/env bash
# make cluster / make cluster-down: the real thing, on libvirt VMs.
#
# Builds the base image (scripts/image.sh, cached by content), then the whole pipeline of
# DESIGN.md for the inventory: VMs under libvirt (mkvm), every node's files and services pushed
# over SSH (node-push), etcd running under systemd inside the VMs as a TLS cluster, route-sync on
# every node (its unit) and on this host, then checks: etcd-check healthy from the host and every
# node reaching every other node's pod gateway.
#
# Kubernetes server binaries are not in Debian: give K8S_BIN=DIR (scripts/fetch-kubernetes.sh
# fetches them) and they are pushed and the control plane and workers started, then
# scripts/smoke.sh runs the hard way's smoke tests. Without K8S_BIN the Kubernetes units are
# installed and checked by mkunits' tests but not started; the summary says so.
#
# Environment: INVENTORY (examples/lab.csv), MKCLUSTER_FLAGS (--name lab), OUT (./out),
# HARDWAY_BIN (target/release), IMAGE (a base image; default: scripts/image.sh's), LIBVIRT_URI (qemu:///system), DOMAIN_TYPE (auto: kvm when the host offers it; qemu
# forces TCG where /dev/kvm exists but cannot run guests), K8S_BIN, WAIT_TIMEOUT (900 s per
# node: a TCG guest needs about 90 s idle, much more on a busy machine), CLUSTER_NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
INVENTORY=${INVENTORY:-examples/lab.csv}
MKCLUSTER_FLAGS=${MKCLUSTER_FLAGS:---name lab}
OUT=${OUT:-$root/out}
BIN=${HARDWAY_BIN:-$root/target/release}
URI=${LIBVIRT_URI:-qemu:///system}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-900}
DOMAIN_TYPE=${DOMAIN_TYPE:-auto}
export PATH="$BIN:$PATH"
doc=$OUT/cluster.json
key=$OUT/ssh/id_ed25519

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit "${2:-3}"; }
node_ssh() {
  local ip=$1; shift
  ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$OUT/known_hosts" \
    -o ConnectTimeout=10 "root@$ip" "$@"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "make cluster needs root (libvirt, routes)" 2
  if [ -z "${CLUSTER_NO_BUILD:-}" ]; then
    bash scripts/deps.sh
    cargo build --workspace --bins --release -q
  fi
  [ -f "$INVENTORY" ] || die "no inventory at $INVENTORY" 2
  local start=$SECONDS
  mkdir -p "$OUT"
  if [ ! -f "$key" ]; then
    install -d -m 0700 "$OUT/ssh"
    ssh-keygen -q -t ed25519 -N '' -C "hardway@$(hostname)" -f "$key"
  fi

  local extra="etcd-server"
  [ -n "${K8S_BIN:-}" ] && extra="etcd-server containerd runc containernetworking-plugins conntrack socat"
  local image=${IMAGE:-}
  if [ -z "$image" ]; then
    say "image: building or reusing the base image"
    image=$(HARDWAY_IMAGE_EXTRA="$extra" bash scripts/image.sh)
  fi

  say "pipeline: mkcluster | cidr-alloc | mkcerts | mkunits | mkvm up"
  # shellcheck disable=SC2086
  mkcluster $MKCLUSTER_FLAGS "$INVENTORY" \
    | cidr-alloc --previous "$doc" \
    | mkcerts --dir "$OUT" \
    | mkunits --dir "$OUT" --bin-dir "$BIN" ${K8S_BIN:+--kubernetes-bin-dir "$K8S_BIN"} \
    | mkvm up --connect "$URI" --domain-type "$DOMAIN_TYPE" --image "$image" --ssh-key "$key.pub" --wait ssh --timeout "$WAIT_TIMEOUT" \
    > "$doc.new"
  mv "$doc.new" "$doc"

  # Without the Kubernetes binaries only etcd and route-sync can run; the rest is installed.
  local push_doc=$doc
  if [ -z "${K8S_BIN:-}" ]; then
    push_doc=$OUT/cluster.push.json
    jq '.nodes[].services |= map(select(. == "etcd.service" or . == "route-sync.service"))' "$doc" > "$push_doc"
  fi
  say "push: node-push (files, then services in order)"
  node-push -f "$push_doc" --dir "$OUT" --identity "$key" --known-hosts "$OUT/known_hosts" --accept-new \
    --timeout 600 -o table > "$OUT/node-push.txt" || { cat "$OUT/node-push.txt" >&2; die "node-push failed"; }

  mapfile -t nodes < <(jq -r '.nodes[].name' "$doc")
  if [ -z "${K8S_BIN:-}" ]; then
    # No CNI runs without a kubelet: a bridge holding each node's pod gateway stands in for cni0.
    for node in "${nodes[@]}"; do
      local ip gw
      ip=$(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .ips[0]' "$doc")
      for gw in $(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .pod_cidrs[] | select(contains("."))' "$doc"); do
        node_ssh "$ip" "ip link show cni0 >/dev/null 2>&1 || ip link add cni0 type bridge; ip addr replace ${gw%.0/*}.1/${gw#*/} dev cni0; ip link set cni0 up"
      done
    done
  fi

  say "routes: route-sync --host here; each node's route-sync.service did its own"
  route-sync --host -f "$doc" > "$OUT/route-sync-host.json"

  say "health: etcd-check from the host"
  local health=3
  for _ in $(seq 60); do
    if etcd-check -f "$doc" --dir "$OUT" --timeout 5s > "$OUT/etcd-check.json" 2>/dev/null; then health=0; break; else health=$?; fi
    sleep 2
  done

  local pings=0 pings_ok=0
  for from in "${nodes[@]}"; do
    local from_ip
    from_ip=$(jq -r --arg n "$from" '.nodes[] | select(.name == $n) | .ips[0]' "$doc")
    for to in "${nodes[@]}"; do
      [ "$from" = "$to" ] && continue
      for cidr in $(jq -r --arg n "$to" '.nodes[] | select(.name == $n) | .pod_cidrs[] | select(contains("."))' "$doc"); do
        pings=$((pings + 1))
        # The image has no ping: a TCP connect to sshd, which listens on every address, on the
        # other node's pod gateway proves the same route.
        node_ssh "$from_ip" "timeout 5 bash -c 'exec 3<>/dev/tcp/${cidr%.0/*}.1/22'" >/dev/null 2>&1 \
          && pings_ok=$((pings_ok + 1))
      done
    done
  done

  local smoke="not run: no K8S_BIN (Kubernetes units installed, not started)"
  if [ -n "${K8S_BIN:-}" ]; then
    if bash scripts/smoke.sh "$doc" "$OUT"; then smoke=passed; else smoke=failed; fi
  fi

  echo
  mkvm status -f "$doc" --connect "$URI" -o table || true
  echo
  etcd-check -f "$doc" --dir "$OUT" -o table 2>/dev/null || true
  echo
  printf '%-28s %s\n' "etcd-check" "$([ $health -eq 0 ] && echo healthy || echo "exit $health")"
  printf '%-28s %s\n' "pod gateways reached" "$pings_ok/$pings"
  printf '%-28s %s\n' "smoke tests" "$smoke"
  printf '%-28s %s s\n' "time after build" "$((SECONDS - start))"
  echo "The cluster is up: 'make cluster-down' removes it. Document: $doc"
  # shellcheck source=scripts/pictures.sh
  . "$root/scripts/pictures.sh" && draw_pictures "$doc"
  [ $health -eq 0 ] && [ $pings_ok -eq $pings ] && [ "$smoke" != failed ]
}

down() {
  [ -f "$doc" ] || { say "no $doc: nothing to remove"; return 0; }
  mkvm down -f "$doc" --connect "$URI"
  say "down: every domain, volume and network mkvm made for this cluster is gone"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) die "usage: cluster.sh up|down" 2 ;;
esac
