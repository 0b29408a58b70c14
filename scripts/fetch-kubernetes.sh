#!/usr/bin/env bash
# fetch-kubernetes.sh VERSION DIR [--arch amd64|arm64]
# fetch-kubernetes.sh --list VERSION [--arch amd64|arm64]
#
# Fetches what a node of a current cluster runs and Debian does not ship, from each project's
# own release, each file checked against the sha256 its release publishes, into DIR, for
# `mkunits --kubernetes-bin-dir DIR` and `make cluster K8S_BIN=DIR`:
#   DIR/kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
#   DIR/containerd containerd-shim-runc-v2 ctr   (containerd 2.x, config version 3)
#   DIR/runc  DIR/crictl  DIR/cni/bin/*          (copy to /opt/cni/bin, mkunits --cni-bin-dir)
# --list prints, without downloading, one line per release file: name, the version it resolved,
# its URL, the URL of its checksum, and the binaries it provides (tab-separated).
#
# The versions besides Kubernetes' are pinned here, at or above Kubernetes the Hard Way's
# downloads-amd64.txt / downloads-arm64.txt (crictl v1.32.0, runc v1.3.0-rc.1, CNI plugins
# v1.6.2, containerd v2.1.0-beta.0): containerd 2.1 is the first with the CNI `bin_dirs` key
# mkunits writes. Downloading needs internet access (hardway's CI has none: its tests run --list).
# Exit codes: 2 bad usage, 3 a download failed or did not match its checksum (nothing installed).
# HARDWAY_K8S_RELEASE_URL and HARDWAY_GITHUB_URL replace https://dl.k8s.io/release and
# https://github.com, for a mirror with the same layout (the script's own test serves one on
# loopback).
set -euo pipefail

k8s_base=${HARDWAY_K8S_RELEASE_URL:-https://dl.k8s.io/release}
gh=${HARDWAY_GITHUB_URL:-https://github.com}

CONTAINERD_VERSION=2.1.4
RUNC_VERSION=v1.3.0
CNI_PLUGINS_VERSION=v1.8.0
CRICTL_VERSION=v1.34.0

usage="usage: fetch-kubernetes.sh VERSION DIR [--arch amd64|arm64] | --list VERSION [--arch amd64|arm64]"
die() { echo "fetch-kubernetes: error: $1" >&2; exit "${2:-2}"; }

list=false arch=amd64 positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --list) list=true ;;
    --arch) [ $# -ge 2 ] || die "--arch needs amd64 or arm64; $usage"; arch=$2; shift ;;
    --arch=*) arch=${1#--arch=} ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) die "unknown option $1; $usage" ;;
    *) positional+=("$1") ;;
  esac
  shift
done
case "$arch" in amd64|arm64) ;; *) die "--arch $arch: use amd64 or arm64" ;; esac
version=${positional[0]:-}
dir=${positional[1]:-}
[ -n "$version" ] || die "no VERSION; $usage"
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "version $version is not like v1.37.2"
$list || [ -n "$dir" ] || die "no DIR; $usage"

# One release file a line: name version url checksum-url provides (provides: comma-separated).
artifacts() {
  local k8s="$k8s_base/$version/bin/linux/$arch"
  local b
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    printf '%s\t%s\t%s\t%s\t%s\n' "$b" "$version" "$k8s/$b" "$k8s/$b.sha256" "$b"
  done
  local c="containerd-$CONTAINERD_VERSION-linux-$arch.tar.gz"
  printf '%s\t%s\t%s\t%s\t%s\n' containerd "v$CONTAINERD_VERSION" \
    "$gh/containerd/containerd/releases/download/v$CONTAINERD_VERSION/$c" \
    "$gh/containerd/containerd/releases/download/v$CONTAINERD_VERSION/$c.sha256sum" \
    "containerd,containerd-shim-runc-v2,ctr"
  # runc publishes one checksum file for every architecture.
  printf '%s\t%s\t%s\t%s\t%s\n' runc "$RUNC_VERSION" \
    "$gh/opencontainers/runc/releases/download/$RUNC_VERSION/runc.$arch" \
    "$gh/opencontainers/runc/releases/download/$RUNC_VERSION/runc.sha256sum" runc
  local n="cni-plugins-linux-$arch-$CNI_PLUGINS_VERSION.tgz"
  printf '%s\t%s\t%s\t%s\t%s\n' cni-plugins "$CNI_PLUGINS_VERSION" \
    "$gh/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION/$n" \
    "$gh/containernetworking/plugins/releases/download/$CNI_PLUGINS_VERSION/$n.sha256" \
    "cni/bin/bridge,cni/bin/host-local,cni/bin/loopback,cni/bin/portmap"
  local t="crictl-$CRICTL_VERSION-linux-$arch.tar.gz"
  printf '%s\t%s\t%s\t%s\t%s\n' crictl "$CRICTL_VERSION" \
    "$gh/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION/$t" \
    "$gh/kubernetes-sigs/cri-tools/releases/download/$CRICTL_VERSION/$t.sha256" crictl
}

if $list; then
  artifacts
  exit 0
fi

mkdir -p "$dir/downloads"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The sha256 a checksum file gives for FILE: a bare hash, or `hash  name` lines.
expected_sha() {
  awk -v n="$2" 'NF == 1 { print $1; exit } $2 == n || $2 == "*" n { print $1; exit }' "$1"
}

# Downloads one release file into DIR/downloads (kept there, so a second run only re-checks it).
fetch() {
  local name=$1 resolved=$2 url=$3 sum_url=$4 file want
  file=$(basename "$url")
  curl -fsSL --retry 3 -o "$tmp/$file.sum" "$sum_url" || die "cannot fetch $sum_url" 3
  want=$(expected_sha "$tmp/$file.sum" "$file")
  [ -n "$want" ] || die "$sum_url names no sha256 for $file" 3
  if [ -f "$dir/downloads/$file" ] && echo "$want  $dir/downloads/$file" | sha256sum -c --quiet 2>/dev/null; then
    echo "fetch-kubernetes: $name $resolved ($arch) already here and verified" >&2
    return
  fi
  echo "fetch-kubernetes: $name $resolved ($arch)" >&2
  curl -fsSL --retry 3 -o "$tmp/$file" "$url" || die "cannot fetch $url" 3
  echo "$want  $tmp/$file" | sha256sum -c --quiet \
    || die "$file does not match its published sha256 ($sum_url); nothing installed" 3
  mv "$tmp/$file" "$dir/downloads/$file"
}

# Every file is fetched and checked before anything is installed.
while IFS=$'\t' read -r name resolved url sum_url _provides; do
  fetch "$name" "$resolved" "$url" "$sum_url"
done < <(artifacts)

stage="$tmp/stage"
mkdir -p "$stage/cni/bin"
d="$dir/downloads"
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  install -m 0755 "$d/$b" "$stage/$b"
done
tar -xzf "$d/containerd-$CONTAINERD_VERSION-linux-$arch.tar.gz" -C "$tmp"
for b in containerd containerd-shim-runc-v2 ctr; do install -m 0755 "$tmp/bin/$b" "$stage/$b"; done
install -m 0755 "$d/runc.$arch" "$stage/runc"
tar -xzf "$d/crictl-$CRICTL_VERSION-linux-$arch.tar.gz" -C "$stage" crictl
tar -xzf "$d/cni-plugins-linux-$arch-$CNI_PLUGINS_VERSION.tgz" -C "$stage/cni/bin"
mkdir -p "$dir/cni/bin"
for f in "$stage"/* "$stage"/cni/bin/*; do
  [ -f "$f" ] || continue
  rel=${f#"$stage"/}
  install -m 0755 "$f" "$dir/$rel.new" && mv "$dir/$rel.new" "$dir/$rel"
done
echo "fetch-kubernetes: Kubernetes $version, containerd $CONTAINERD_VERSION, runc $RUNC_VERSION, CNI plugins $CNI_PLUGINS_VERSION, crictl $CRICTL_VERSION ($arch) in $dir, each checked against its sha256" >&2
