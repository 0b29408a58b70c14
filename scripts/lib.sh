# shellcheck shell=bash
# Sourced by scripts/cluster.sh and scripts/smoke.sh: how both reach the nodes, in one place.
#
# `make cluster` keeps its SSH key and the nodes' host keys under OUT: node-push records each
# node's first key in OUT/known_hosts (--accept-new) and every later ssh checks against it.

# hardway_ssh_init OUT: sets SSH_KEY, SSH_KNOWN_HOSTS and SSH_OPTS (the ssh(1) options every
# connection to a node uses: that key, that known_hosts, strict host key checking, no prompts).
hardway_ssh_init() {
  local out=$1
  SSH_KEY=$out/ssh/id_ed25519
  SSH_KNOWN_HOSTS=$out/known_hosts
  SSH_OPTS=(-i "$SSH_KEY" -o BatchMode=yes -o StrictHostKeyChecking=yes
    -o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o ConnectTimeout=10)
}

# node_ssh IP COMMAND...: runs COMMAND as root on the node at IP.
node_ssh() {
  local ip=$1
  shift
  ssh "${SSH_OPTS[@]}" "root@$ip" "$@"
}

# node_ip DOC NAME: the node's first address (the one SSH, etcd and the API use).
node_ip() {
  jq -r --arg n "$2" '.nodes[] | select(.name == $n) | .ips[0]' "$1"
}

# The units whose programs come from K8S_BIN (the Kubernetes server binaries, flanneld, kubectl)
# or that need the API those run (the add-ons and the Nodes' podCIDRs, applied with kubectl):
# installed always, started only with K8S_BIN.
# shellcheck disable=SC2034 # used by the scripts that source this file
KUBERNETES_UNITS=(kube-apiserver.service kube-controller-manager.service kube-scheduler.service
  kubelet.service kube-proxy.service flanneld.service hardway-addons.service
  hardway-pod-cidrs.timer hardway-pod-cidrs.service)
