#!/usr/bin/env bash
# Installs the Debian packages hardway's build, tests, lab and benchmarks use. Idempotent.
# Used by .ci/run and scripts/lab.sh; run it yourself once on a new machine (as root).
set -euo pipefail

packages=(
  # build: virt needs libvirt-dev and pkg-config, ssh2 needs libssl-dev, etcd-client's
  # generated gRPC code needs protoc and the well-known types' .proto files (libprotobuf-dev,
  # only a Recommends of protobuf-compiler, which --no-install-recommends skips)
  build-essential pkg-config libssl-dev libvirt-dev protobuf-compiler libprotobuf-dev
  # tests with real components
  etcd-server etcd-client
  iproute2 iputils-ping nftables
  openssh-server openssh-client
  haproxy keepalived containernetworking-plugins
  containerd  # mkunits: `containerd config dump` checks the generated config
  libvirt-daemon-system libvirt-clients qemu-system-x86 dnsmasq-base
  mmdebstrap systemd
  # mkvm: scripts/image.sh builds the VM image without loop devices or mounts; isoinfo reads the seed
  syslinux syslinux-common mtools dosfstools fdisk genisoimage
  openssl jq
  graphviz  # `dot`: the pictures of the plan (scripts/pictures.sh) and their tests
  curl  # scripts/fetch-kubernetes.sh, whose test fetches from a loopback mirror
  # mkunits: the add-on manifests are validated against each release's schemas with PyPI's
  # kubernetes-validate, installed below into a venv of Debian's python3
  python3 python3-venv
  # tests/e2e/scripts_lint.rs: every script in scripts/ passes shellcheck
  shellcheck
  # benchmarks
  hyperfine
)

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: error: run as root (it installs Debian packages)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The machine image ships a newer qemu-utils than Debian 12's qemu-system; libvirt wants the pair
# to match (docs/ARCHITECTURE.md). Install the matching one when they differ.
want=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
have=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
if [ -n "$want" ] && [ "$want" != "$have" ]; then
  apt-get install -y -qq --allow-downgrades "qemu-utils=$want" || apt-get install -y -qq --allow-downgrades qemu-utils
fi

# kubernetes-validate (PyPI) ships the Kubernetes JSON schemas per release (1.37.0: v1.35-v1.37);
# mkunits' tests find it at $KUBERNETES_VALIDATE, else here. Debian's python3, not a user's pyenv.
venv=/opt/hardway/venv
kubernetes_validate=1.37.0
if [ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null || true)" != "$kubernetes_validate" ]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$kubernetes_validate"
fi
