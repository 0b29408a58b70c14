#!/usr/bin/env bash
# Times cidr-alloc, whole process with JSON in and out, on generated documents of 5,000 nodes
# (dual-stack) and 100,000 nodes (IPv4), against the Python a user would otherwise write: an
# `ipaddress` loop that hands out the next host, the next pod subnet and a sha256 MAC per node
# (a linear loop over generators, without cidr-alloc's checks, pins or --previous).
# Targets: 5,000 nodes <= 50 ms, 100,000 nodes <= 1 s. Prints a markdown table on stdout.
set -euo pipefail

bin=${HARDWAY_BIN:-target/release}
for tool in mkcluster cidr-alloc; do
    [[ -x $bin/$tool ]] || { echo "bench: $bin/$tool is not built (cargo build --release)" >&2; exit 2; }
done
command -v hyperfine >/dev/null || { echo "bench: hyperfine is not installed" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# An inventory: 3 controllers with etcd, then workers; no addresses, so all are allocated.
inventory() {
    local count=$1
    {
        echo "name,roles"
        for i in 1 2 3; do echo "controller-$i,etcd+controller"; done
        seq 1 $((count - 3)) | sed 's/.*/worker-&,worker/'
    }
}

inventory 5000 >"$work/5k.csv"
"$bin/mkcluster" "$work/5k.csv" --name bench5k \
    --node-network 10.0.0.0/16 --node-network fd00:10::/64 \
    --pod-network 10.128.0.0/9 --pod-network fd00:200::/48 \
    --service-network 10.32.0.0/24 --service-network fd00:32::/112 >"$work/5k.json"
inventory 100000 >"$work/100k.csv"
"$bin/mkcluster" "$work/100k.csv" --name bench100k \
    --node-network 10.0.0.0/15 --pod-network 10.128.0.0/9 --pod-prefix 26 >"$work/100k.json"

cat >"$work/naive.py" <<'PY'
# What a user would write: next host, next subnet, a MAC from a hash, per node.
import hashlib, ipaddress, json, sys
doc = json.load(sys.stdin)
nets = doc["cluster"]["networks"]
hosts = [ipaddress.ip_network(n).hosts() for n in nets["node"]]
for gen in hosts:
    next(gen)  # the gateway
pods = [ipaddress.ip_network(n).subnets(new_prefix=p) for n, p in zip(nets["pod"], nets["pod_prefix"])]
for node in doc["nodes"]:
    ips = [str(next(gen)) for gen in hosts]
    node["ips"] = ips
    if "worker" in node["roles"]:
        node["pod_cidrs"] = [str(next(gen)) for gen in pods]
    digest = hashlib.sha256(f'{doc["cluster"]["name"]}/{node["name"]}'.encode()).digest()
    node["mac"] = "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])
json.dump(doc, sys.stdout, indent=2)
PY

# Both must succeed before they are timed.
"$bin/cidr-alloc" -f "$work/100k.json" >/dev/null
python3 "$work/naive.py" <"$work/5k.json" >/dev/null

measure() { # name runs command -> mean ms
    local name=$1 runs=$2
    shift 2
    hyperfine --warmup 1 --runs "$runs" --style none --export-json "$work/$name.json" "$@" >/dev/null 2>&1
    python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["mean"] * 1000))' "$work/$name.json"
}
cpu() { # name -> mean user+system ms of a measured command
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.0f" % ((r["user"] + r["system"]) * 1000))' "$work/$1.json"
}

echo "### cidr-alloc"
echo
echo "| case | hardway | alternative (python3 ipaddress loop) | ratio |"
echo "|---|---|---|---|"
for size in 5k 100k; do
    ours=$(measure "ours-$size" 10 "$bin/cidr-alloc -f $work/$size.json > /dev/null")
    theirs=$(measure "naive-$size" 3 "python3 $work/naive.py < $work/$size.json > /dev/null")
    ratio=$(python3 -c "print('%.1fx' % ($theirs / $ours))")
    case $size in
        5k) label="5,000 nodes, dual-stack (target <= 50 ms)" ;;
        100k) label="100,000 nodes, IPv4 (target <= 1000 ms)" ;;
    esac
    echo "| $label | ${ours} ms | ${theirs} ms | $ratio |"
done
echo
echo "cidr-alloc CPU time (user+sys): 5,000 nodes $(cpu ours-5k) ms, 100,000 nodes $(cpu ours-100k) ms;" \
    "load average $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs while measuring (wall time grows with load)."
