#!/usr/bin/env bash
# mkvm against what a user would otherwise run: virsh on the same XML (mkvm --dry-run emits it),
# for the nine nodes of docs/sources.md#seed-003 (tests/fixtures/ebook-dualstack.json): network, pool, 9 overlay
# volumes, 9 NoCloud seeds, 9 domains.
#
#   test:///default  define + start; both sides in one process (the test driver's state lives in
#                    one connection): `mkvm up --wait running` vs one `virsh` batch of the same calls
#   qemu:///system   define only (no boot), a libvirtd of its own inside a network namespace:
#                    `mkvm up --no-start` vs a shell loop of `virsh` commands, one per object, with
#                    genisoimage making each seed (what cloud-localds does)
#
# Needs root, hyperfine, jq, virsh, genisoimage, qemu-img. Prints markdown on stdout.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${HARDWAY_BIN:-$root/target/release}
bin=$(cd "$bin" && pwd)
doc=$root/tests/fixtures/ebook-dualstack.json
runs=${BENCH_RUNS:-5}
netns=mkvm-bench-$$
work=$(mktemp -d /tmp/mkvm-bench.XXXXXX)

cleanup() {
  if ip netns list 2>/dev/null | grep -qw "$netns"; then
    for pid in $(ip netns pids "$netns"); do kill "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $(ip netns pids "$netns"); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$netns" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "bench/mkvm.sh: error: run as root (it starts libvirtd)" >&2; exit 2; }
if pgrep -x libvirtd >/dev/null; then
  echo "bench/mkvm.sh: error: a libvirtd is already running; stop it (the bench starts its own in a namespace)" >&2
  exit 2
fi

ssh-keygen -q -t ed25519 -N '' -C mkvm-bench -f "$work/id"
qemu-img create -q -f qcow2 "$work/base.qcow2" 1G
chmod 0755 "$work"

mean_ms() { jq -r '.results[0].mean * 1000 | floor' "$1"; }
row() { # case, hardway json, alternative json, alternative name
  local a b
  a=$(mean_ms "$2"); b=$(mean_ms "$3")
  echo "| $1 | $a | $b ($4) | $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1fx", b / (a > 0 ? a : 1) }') |"
}

# The plan: every object's XML, as mkvm would make it.
plan() { # uri
  "$bin/mkvm" up --dry-run -c "$1" --domain-type qemu --image "$work/base.qcow2" \
    --ssh-key "$work/id.pub" -f "$doc" 2>/dev/null
}

write_xml() { # plan.json dir
  local plan=$1 dir=$2 i n
  mkdir -p "$dir"
  jq -r .network "$plan" > "$dir/net.xml"
  jq -r .pool "$plan" > "$dir/pool.xml"
  n=$(jq '.nodes | length' "$plan")
  for i in $(seq 0 $((n - 1))); do
    name=$(jq -r ".nodes[$i].name" "$plan")
    jq -r ".nodes[$i].domain" "$plan" > "$dir/dom-$name.xml"
    jq -r ".nodes[$i].volumes[0].xml" "$plan" > "$dir/vol-$name.xml"
    mkdir -p "$dir/seed-$name"
    for f in user-data meta-data network-config; do
      jq -r ".nodes[$i].volumes[1].content[\"$f\"]" "$plan" > "$dir/seed-$name/$f"
    done
    jq -r ".nodes[$i].volumes[1].xml" "$plan" > "$dir/seedvol-$name.xml"
  done
  jq -r '.nodes[].name' "$plan" > "$dir/names"
}

echo "### mkvm"
echo
echo "9 nodes of docs/sources.md#seed-003 (tests/fixtures/ebook-dualstack.json): network, pool, 9 qcow2 overlays, 9 NoCloud seeds, 9 domains; mean of $runs runs."
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"

# --- test:///default: define and start, one process each -------------------------------------
plan test:///default > "$work/test-plan.json"
write_xml "$work/test-plan.json" "$work/test"
pool=$(jq -r .hypervisor.pool "$doc"); net=$(jq -r .hypervisor.network "$doc")
batch="net-define $work/test/net.xml; net-start $net; pool-define $work/test/pool.xml; pool-build $pool; pool-start $pool"
while read -r name; do
  size=$(stat -c %s "$work/test/seed-$name/user-data")
  batch="$batch; vol-create $pool $work/test/vol-$name.xml; vol-create-as $pool $(jq -r .cluster.name "$doc")-$name-seed.iso $((size + 65536)) --format raw; define $work/test/dom-$name.xml; start $name"
done < "$work/test/names"
hyperfine -N --runs "$runs" --warmup 1 --export-json "$work/t1.json" \
  "$bin/mkvm up -c test:///default --domain-type qemu --overcommit --wait running --image $work/base.qcow2 --ssh-key $work/id.pub -f $doc" \
  >/dev/null 2>&1
hyperfine --runs "$runs" --warmup 1 --export-json "$work/t2.json" \
  "virsh -q -c test:///default '$batch' >/dev/null" >/dev/null 2>&1
row "test:///default, define + start 9" "$work/t1.json" "$work/t2.json" "one virsh batch, same XML"

# --- qemu:///system: define only, libvirtd in a namespace ------------------------------------
ip netns add "$netns"
ip netns exec "$netns" ip link set lo up
[ ! -e /dev/kvm ] || { chown root:kvm /dev/kvm; chmod 0660 /dev/kvm; }
{ cat /etc/libvirt/qemu.conf; echo 'namespaces = []'; } > "$work/qemu.conf"
ip netns exec "$netns" virtlogd -d -p "$work/virtlogd.pid"
ip netns exec "$netns" unshare -m --propagation private sh -c \
  "mount --bind $work/qemu.conf /etc/libvirt/qemu.conf && exec libvirtd -d -p $work/libvirtd.pid"
for _ in $(seq 100); do virsh -q -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.3; done
in_ns() { ip netns exec "$netns" "$@"; }

plan qemu:///system > "$work/sys-plan.json"
write_xml "$work/sys-plan.json" "$work/sys"
cat > "$work/reset.sh" <<EOF
#!/usr/bin/env bash
# Removes what either side made (the same names), so every run starts from nothing.
v() { virsh -q -c qemu:///system "\$@" >/dev/null 2>&1 || true; }
while read -r name; do
  v undefine "\$name"
  v vol-delete --pool $pool $(jq -r .cluster.name "$doc")-\$name.qcow2
  v vol-delete --pool $pool $(jq -r .cluster.name "$doc")-\$name-seed.iso
done < $work/sys/names
v net-destroy $net; v net-undefine $net
v pool-destroy $pool; v pool-delete $pool; v pool-undefine $pool
EOF
cat > "$work/virsh-loop.sh" <<EOF
#!/usr/bin/env bash
# What a user would script: one virsh call per object, genisoimage for each seed.
set -e
v() { virsh -q -c qemu:///system "\$@" >/dev/null; }
v net-define $work/sys/net.xml; v net-start $net
v pool-define $work/sys/pool.xml; v pool-build $pool; v pool-start $pool
while read -r name; do
  genisoimage -quiet -o $work/sys/seed-\$name.iso -V cidata -J -R $work/sys/seed-\$name/user-data $work/sys/seed-\$name/meta-data $work/sys/seed-\$name/network-config
  v vol-create $pool $work/sys/vol-\$name.xml
  v vol-create-as $pool $(jq -r .cluster.name "$doc")-\$name-seed.iso \$(stat -c %s $work/sys/seed-\$name.iso) --format raw
  v vol-upload --pool $pool $(jq -r .cluster.name "$doc")-\$name-seed.iso $work/sys/seed-\$name.iso
  v define $work/sys/dom-\$name.xml
done < $work/sys/names
EOF
chmod +x "$work/reset.sh" "$work/virsh-loop.sh"
"$work/reset.sh"
hyperfine --runs "$runs" --prepare "$work/reset.sh" --export-json "$work/s1.json" \
  "ip netns exec $netns $bin/mkvm up -c qemu:///system --domain-type qemu --no-start --overcommit --image $work/base.qcow2 --ssh-key $work/id.pub -f $doc >/dev/null 2>&1" \
  >/dev/null 2>&1
hyperfine --runs "$runs" --prepare "$work/reset.sh" --export-json "$work/s2.json" \
  "$work/virsh-loop.sh" >/dev/null 2>&1
"$work/reset.sh"
row "qemu:///system, define 9 (no boot)" "$work/s1.json" "$work/s2.json" "virsh loop + genisoimage, same XML"
