#!/usr/bin/env bash
# make cluster / make cluster-down: the real thing, on libvirt VMs.
#
# Builds the base image (scripts/image.sh: Debian 13 unless IMAGE_DEBIAN=12, cached by content),
# then the whole pipeline of docs/ARCHITECTURE.md for the inventory: VMs under libvirt (mkvm), every node's
# files pushed and its services started over SSH in the document's order (node-push), then
# checks: each service's `systemctl is-active` on every node, the API VIP answering from the host
# (haproxy on the lb node, behind keepalived), etcd-check healthy from the host, and every node
# reaching every other node's pod gateway through the routes route-sync made.
#
# Kubernetes server binaries are not in Debian: give K8S_BIN=DIR (scripts/fetch-kubernetes.sh
# fetches them) and the document is mkcluster's default version, every unit is started and
# scripts/smoke.sh runs the hard way's smoke tests. Without K8S_BIN the document is v1.35.0 on
# Debian's containerd 1.x (`--container-runtime containerd-1`, CRI config version 2), so the VMs
# run a container runtime from the generated config; the Kubernetes units (lib.sh's
# KUBERNETES_UNITS) are installed, not started, and the summary says so.
#
# Environment: INVENTORY (examples/lab-lb.csv), MKCLUSTER_FLAGS (--name lab --api-vip 10.240.0.10:
# give your own with another inventory), OUT (./out), HARDWAY_BIN (target/release), IMAGE (a base
# image; default: scripts/image.sh's), IMAGE_DEBIAN (13 or 12), LIBVIRT_URI (qemu:///system),
# DOMAIN_TYPE (auto: kvm when the host offers it; qemu forces TCG where /dev/kvm exists but cannot
# run guests), K8S_BIN, WAIT_TIMEOUT (900 s per node: a TCG guest needs about 90 s idle, much more
# on a busy machine), MKVM_FLAGS (more `mkvm up` flags, e.g. --overcommit), CLUSTER_NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
INVENTORY=${INVENTORY:-examples/lab-lb.csv}
MKCLUSTER_FLAGS=${MKCLUSTER_FLAGS:---name lab --api-vip 10.240.0.10}
OUT=${OUT:-$root/out}
BIN=${HARDWAY_BIN:-$root/target/release}
URI=${LIBVIRT_URI:-qemu:///system}
WAIT_TIMEOUT=${WAIT_TIMEOUT:-900}
DOMAIN_TYPE=${DOMAIN_TYPE:-auto}
export PATH="$BIN:$PATH"
doc=$OUT/cluster.json
# The document before mkvm: what `down` removes when `mkvm up` failed (a failed wait leaves the
# VMs defined) and so wrote no $doc.
units_doc=$OUT/cluster.units.json
hardway_ssh_init "$OUT"
key=$SSH_KEY

say() { printf 'cluster: %s\n' "$*" >&2; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit "${2:-3}"; }

# The base image every node boots (IMAGE, or scripts/image.sh's, built once and cached).
base_image() {
  if [ -n "${IMAGE:-}" ]; then echo "$IMAGE"; return; fi
  say "image: building or reusing the Debian ${IMAGE_DEBIAN:-13} base image"
  bash scripts/image.sh --debian "${IMAGE_DEBIAN:-13}"
}

# mkcluster | cidr-alloc | mkcerts | mkunits | mkvm up, into $doc. mkvm waits for cloud-init to
# finish, not only for sshd's banner: cloud-init's set-passwords module restarts sshd after the
# banner first shows (the seed sets ssh_pwauth), and a push in that window is refused — seen on
# Debian 13 guests here.
pipeline() {
  local image=$1 version_flags=()
  # Without K8S_BIN no containerd 2 is at hand: v1.35 is the last minor on containerd 1.x, which
  # the image has from Debian (docs/ARCHITECTURE.md, "Kubernetes versions and runtimes").
  [ -n "${K8S_BIN:-}" ] || version_flags=(--kubernetes-version v1.35.0 --container-runtime containerd-1)
  say "pipeline: mkcluster | cidr-alloc | mkcerts | mkunits | mkvm up"
  # shellcheck disable=SC2086 # MKCLUSTER_FLAGS and MKVM_FLAGS are lists of flags
  mkcluster $MKCLUSTER_FLAGS "${version_flags[@]}" "$INVENTORY" \
    | cidr-alloc --previous "$doc" \
    | mkcerts --dir "$OUT" \
    | mkunits --dir "$OUT" --bin-dir "$BIN" ${K8S_BIN:+--kubernetes-bin-dir "$K8S_BIN"} \
    | tee "$units_doc" \
    | mkvm up --connect "$URI" --domain-type "$DOMAIN_TYPE" --image "$image" --ssh-key "$key.pub" \
        --wait cloud-init --timeout "$WAIT_TIMEOUT" ${MKVM_FLAGS:-} \
    > "$doc.new"
  mv "$doc.new" "$doc"
}

# node-push with every node's services, in the document's order; without K8S_BIN the Kubernetes
# units are left out of $push_doc (their files are still installed).
push() {
  push_doc=$doc
  if [ -z "${K8S_BIN:-}" ]; then
    push_doc=$OUT/cluster.push.json
    jq '.nodes[].services |= map(select(. as $s | $ARGS.positional | index($s) | not))' \
      "$doc" --args "${KUBERNETES_UNITS[@]}" > "$push_doc"
  fi
  say "push: node-push (files, then services in order)"
  node-push -f "$push_doc" --dir "$OUT" --identity "$SSH_KEY" --known-hosts "$SSH_KNOWN_HOSTS" --accept-new \
    --timeout 600 -o table > "$OUT/node-push.txt" || { cat "$OUT/node-push.txt" >&2; die "node-push failed"; }
}

# No CNI runs without a kubelet: a bridge holding each node's pod gateway stands in for cni0.
stand_in_bridges() {
  local node ip cidr
  for node in "${nodes[@]}"; do
    ip=$(node_ip "$doc" "$node")
    for cidr in $(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .pod_cidrs[] | select(contains("."))' "$doc"); do
      node_ssh "$ip" "ip link show cni0 >/dev/null 2>&1 || ip link add cni0 type bridge; ip addr replace ${cidr%.0/*}.1/${cidr#*/} dev cni0; ip link set cni0 up"
    done
  done
}

# One row per node and service: `systemctl is-active` for the started ones, "installed, not
# started" for the others. Sets services_ok and services_started.
check_services() {
  local node ip unit i
  local -a started states
  local -A state_of
  services_ok=0 services_started=0
  printf '%-10s %-34s %s\n' NODE SERVICE STATE > "$OUT/services.txt"
  for node in "${nodes[@]}"; do
    ip=$(node_ip "$doc" "$node")
    mapfile -t started < <(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .services[]' "$push_doc")
    state_of=()
    if [ ${#started[@]} -gt 0 ]; then
      # One state per unit, in order; the exit status is non-zero when one is not active.
      mapfile -t states < <(node_ssh "$ip" systemctl is-active "${started[@]}" || true)
      for i in "${!started[@]}"; do state_of[${started[$i]}]=${states[$i]:-unknown (ssh failed)}; done
    fi
    for unit in $(jq -r --arg n "$node" '.nodes[] | select(.name == $n) | .services[]' "$doc"); do
      if [ -n "${state_of[$unit]:-}" ]; then
        services_started=$((services_started + 1))
        [ "${state_of[$unit]}" != active ] || services_ok=$((services_ok + 1))
        printf '%-10s %-34s %s\n' "$node" "$unit" "${state_of[$unit]}"
      else
        printf '%-10s %-34s %s\n' "$node" "$unit" "installed, not started"
      fi
    done >> "$OUT/services.txt"
  done
}

tcp_open() { timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# The API VIP from this host: held (sshd listens on every address, so :22 answers wherever
# keepalived put the VIP) and answering on the API port (haproxy, or an apiserver with K8S_BIN).
# Sets vip_held, vip_api and vip_ok (0 when a check failed).
check_vip() {
  local vip port
  vip=$(jq -r '.cluster.api.vip // empty' "$doc")
  port=$(jq -r '.cluster.api.port' "$doc")
  vip_held="none: no node runs keepalived" vip_api="none" vip_ok=1
  jq -e '[.nodes[].services[]] | index("keepalived.service")' "$push_doc" >/dev/null || return 0
  vip_held="$vip no" vip_ok=0
  for _ in $(seq 30); do
    if tcp_open "$vip" 22; then vip_held="$vip yes" vip_ok=1; break; fi
    sleep 2
  done
  if [ -n "${K8S_BIN:-}" ] || jq -e '[.nodes[].services[]] | index("haproxy.service")' "$push_doc" >/dev/null; then
    if tcp_open "$vip" "$port"; then vip_api="$vip:$port yes"; else vip_api="$vip:$port no" vip_ok=0; fi
  else
    vip_api="$vip:$port not checked: the VIP's holders are controllers, whose apiserver needs K8S_BIN"
  fi
}

check_etcd() {
  health=3
  for _ in $(seq 60); do
    if etcd-check -f "$doc" --dir "$OUT" --timeout 5s > "$OUT/etcd-check.json" 2>/dev/null; then health=0; break; else health=$?; fi
    sleep 2
  done
}

# Every node reaches every other node's pod gateway. The image has no ping: a TCP connect to
# sshd, which listens on every address, on the other node's pod gateway proves the same route.
check_pod_gateways() {
  local from to from_ip cidr
  pings=0 pings_ok=0
  for from in "${nodes[@]}"; do
    from_ip=$(node_ip "$doc" "$from")
    for to in "${nodes[@]}"; do
      [ "$from" = "$to" ] && continue
      for cidr in $(jq -r --arg n "$to" '.nodes[] | select(.name == $n) | .pod_cidrs[] | select(contains("."))' "$doc"); do
        pings=$((pings + 1))
        node_ssh "$from_ip" "timeout 5 bash -c 'exec 3<>/dev/tcp/${cidr%.0/*}.1/22'" >/dev/null 2>&1 \
          && pings_ok=$((pings_ok + 1))
      done
    done
  done
}

up() {
  [ "$(id -u)" -eq 0 ] || die "make cluster needs root (libvirt, routes)" 2
  if [ -z "${CLUSTER_NO_BUILD:-}" ]; then
    bash scripts/deps.sh
    cargo build --workspace --bins --release -q
  fi
  [ -f "$INVENTORY" ] || die "no inventory at $INVENTORY" 2
  local start=$SECONDS image
  mkdir -p "$OUT"
  if [ ! -f "$key" ]; then
    install -d -m 0700 "$OUT/ssh"
    ssh-keygen -q -t ed25519 -N '' -C "hardway@$(hostname)" -f "$key"
  fi
  image=$(base_image)
  pipeline "$image"
  push
  mapfile -t nodes < <(jq -r '.nodes[].name' "$doc")
  [ -n "${K8S_BIN:-}" ] || stand_in_bridges

  say "routes: route-sync --host here; each node's route-sync.service did its own"
  route-sync --host -f "$doc" > "$OUT/route-sync-host.json"

  say "checks: services, API VIP, etcd-check from the host, pod gateways"
  check_services
  check_vip
  check_etcd
  check_pod_gateways

  local smoke="not run: no K8S_BIN (Kubernetes units installed, not started)"
  if [ -n "${K8S_BIN:-}" ]; then
    if bash scripts/smoke.sh "$doc" "$OUT"; then smoke=passed; else smoke=failed; fi
  fi

  echo
  mkvm status -f "$doc" --connect "$URI" -o table || true
  echo
  cat "$OUT/services.txt"
  echo
  etcd-check -f "$doc" --dir "$OUT" -o table 2>/dev/null || true
  echo
  printf '%-28s %s\n' "services active" "$services_ok/$services_started started"
  printf '%-28s %s\n' "api VIP held" "$vip_held"
  printf '%-28s %s\n' "api VIP answers" "$vip_api"
  printf '%-28s %s\n' "etcd-check" "$([ "$health" -eq 0 ] && echo healthy || echo "exit $health")"
  printf '%-28s %s\n' "pod gateways reached" "$pings_ok/$pings"
  printf '%-28s %s\n' "smoke tests" "$smoke"
  printf '%-28s %s s\n' "time after build" "$((SECONDS - start))"
  echo "The cluster is up: 'make cluster-down' removes it. Document: $doc"
  # shellcheck source=scripts/pictures.sh
  . "$root/scripts/pictures.sh" && draw_pictures "$doc"
  [ "$services_ok" -eq "$services_started" ] && [ "$vip_ok" -eq 1 ] && [ "$health" -eq 0 ] \
    && [ "$pings_ok" -eq "$pings" ] && [ "$smoke" != failed ]
}

down() {
  local made=$doc
  [ -f "$made" ] || made=$units_doc
  [ -f "$made" ] || { say "no $doc: nothing to remove"; return 0; }
  mkvm down -f "$made" --connect "$URI"
  say "down: every domain, volume and network mkvm made for this cluster is gone"
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) die "usage: cluster.sh up|down" 2 ;;
esac
