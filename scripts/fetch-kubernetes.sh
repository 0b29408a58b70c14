#!/usr/bin/env bash
# fetch-kubernetes.sh VERSION DIR: downloads the official Kubernetes server and node binaries for
# linux/amd64 into DIR and checks each against the release's published sha256, for `make cluster
# K8S_BIN=DIR`. It needs internet access to dl.k8s.io and the containerd/CNI release pages are not
# fetched: Debian's containerd, runc and containernetworking-plugins packages are used instead.
# hardway's CI has no internet, so CI never runs this script.
set -euo pipefail
version=${1:?usage: fetch-kubernetes.sh VERSION DIR (e.g. v1.32.3 ./k8s-bin)}
dir=${2:?usage: fetch-kubernetes.sh VERSION DIR}
case "$version" in v[0-9]*.[0-9]*.[0-9]*) ;; *) echo "fetch-kubernetes: error: version $version is not like v1.32.3" >&2; exit 2 ;; esac
base="https://dl.k8s.io/release/$version/bin/linux/amd64"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in "${binaries[@]}"; do
  if [ -x "$dir/$b" ] && [ -f "$dir/$b.sha256" ] && echo "$(cat "$dir/$b.sha256")  $dir/$b" | sha256sum -c --quiet 2>/dev/null; then
    echo "fetch-kubernetes: $b $version already here and verified" >&2
    continue
  fi
  echo "fetch-kubernetes: $b $version" >&2
  curl -fsSL --retry 3 -o "$tmp/$b" "$base/$b"
  curl -fsSL --retry 3 -o "$tmp/$b.sha256" "$base/$b.sha256"
  if ! echo "$(cat "$tmp/$b.sha256")  $tmp/$b" | sha256sum -c --quiet; then
    echo "fetch-kubernetes: error: $b does not match its published sha256; nothing installed" >&2
    exit 3
  fi
  install -m 0755 "$tmp/$b" "$dir/$b"
  install -m 0644 "$tmp/$b.sha256" "$dir/$b.sha256"
done
echo "fetch-kubernetes: $version in $dir, every binary checked against its sha256" >&2
