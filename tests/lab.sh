#!/usr/bin/env bash
# make lab as a test: the whole pipeline for examples/lab.csv in network namespaces must end with
# etcd-check healthy, every pod gateway reachable and mkcerts check clean; a second run of the
# pipeline must change nothing, and so must make lab again on the running lab; lab-down must leave
# no namespace, bridge or process behind.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB_DIR=$(mktemp -d /tmp/hardway-lab.XXXXXX)
export LAB_NAME=hwtest LAB_DIR LAB_NO_BUILD=1
trap 'bash scripts/lab.sh down >/dev/null 2>&1 || true; rm -rf "$LAB_DIR"' EXIT
bash scripts/lab.sh up
for svg in cluster.svg routes.svg; do  # scripts/pictures.sh, drawn beside the document
  grep -q '<svg' "$LAB_DIR/$svg" || { echo "lab test: no $svg beside the document" >&2; exit 1; }
done
cp "$LAB_DIR/cluster.json" "$LAB_DIR/first.json"
# Idempotence across the pipeline: re-running every step on the same inventory (the live path's
# pipeline, etcd-sync included: the lab recorded its members) changes nothing.
before=$(find "$LAB_DIR/out" -type f -printf '%P %T@\n' | sort)
PATH="${HARDWAY_BIN:-$PWD/target/debug}:$PATH"
mkcluster --name lab examples/lab.csv | cidr-alloc --previous "$LAB_DIR/cluster.json" \
  | mkcerts --dir "$LAB_DIR/out" 2>/dev/null \
  | etcd-sync --dir "$LAB_DIR/out" --previous "$LAB_DIR/cluster.json" \
  | mkunits --dir "$LAB_DIR/out" --bin-dir "${HARDWAY_BIN:-$PWD/target/debug}" 2>/dev/null > "$LAB_DIR/second.json"
after=$(find "$LAB_DIR/out" -type f -printf '%P %T@\n' | sort)
cmp "$LAB_DIR/first.json" "$LAB_DIR/second.json" || { echo "lab test: the second pipeline run changed the document" >&2; exit 1; }
[ "$before" = "$after" ] || { echo "lab test: the second pipeline run rewrote files" >&2; exit 1; }
# make lab again on the running lab, same inventory: the live path changes nothing either (no
# file rewritten, the same document, every member still the process it was).
pids=$(cat "$LAB_DIR"/run/etcd-*.pid)
bash scripts/lab.sh up > /dev/null 2>&1 || { echo "lab test: make lab on the running lab failed" >&2; exit 1; }
again=$(find "$LAB_DIR/out" -type f -printf '%P %T@\n' | sort)
cmp "$LAB_DIR/first.json" "$LAB_DIR/cluster.json" || { echo "lab test: make lab on the running lab changed the document" >&2; exit 1; }
[ "$before" = "$again" ] || { echo "lab test: make lab on the running lab rewrote files" >&2; exit 1; }
[ "$pids" = "$(cat "$LAB_DIR"/run/etcd-*.pid)" ] || { echo "lab test: make lab on the running lab restarted etcd" >&2; exit 1; }
for pid in $pids; do kill -0 "$pid" || { echo "lab test: etcd $pid is gone" >&2; exit 1; }; done
bash scripts/lab.sh down
left=$( (ip netns list | grep '^hwtest-' || true; ip link show hwtest0 2>/dev/null || true) | wc -l)
[ "$left" -eq 0 ] || { echo "lab test: lab-down left $left namespaces or links" >&2; exit 1; }
echo "lab: 1 passed, 0 failed"
