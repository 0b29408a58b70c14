#!/usr/bin/env bash
# node-push against what the guides do (docs/sources.md#seed-003): a shell loop of `scp` per file, then one `ssh`
# per node for chown/chmod and systemctl. Against a real sshd on a loopback port started here
# (its own host key, client key, config and a stub systemctl), FILES files of ~2 KiB per node:
#   - first push to one node (destinations removed before each run),
#   - re-push when nothing changed (node-push uploads nothing; scp has no way to skip),
#   - NODES nodes in one run (node-push in parallel; the loop goes node after node).
# Prints a markdown table. Needs root (sshd), openssh-server, openssh-client, hyperfine, jq.
set -euo pipefail

bin=${HARDWAY_BIN:-target/release}
node_push=$(realpath "$bin/node-push")
files=${FILES:-30}
nodes=${NODES:-3}
runs=${RUNS:-10}
tmp=$(mktemp -d)
sshd_pid=

cleanup() {
  if [ -n "$sshd_pid" ]; then
    # Connection processes setsid() away from the listener: kill its children first.
    pkill -KILL -P "$sshd_pid" 2>/dev/null || true
    kill -KILL "$sshd_pid" 2>/dev/null || true
    wait "$sshd_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || { echo "node-push.sh: error: needs root (sshd)" >&2; exit 2; }
[ -x "$node_push" ] || { echo "node-push.sh: error: $node_push is not built (make release)" >&2; exit 2; }
command -v /usr/sbin/sshd >/dev/null || { echo "node-push.sh: error: apt-get install openssh-server" >&2; exit 2; }

# The server: its own keys, a config like testkit::sshd's, a stub systemctl first on PATH.
mkdir -p /run/sshd "$tmp/bin" "$tmp/out" "$tmp/root"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$tmp/id_ed25519"
cp "$tmp/id_ed25519.pub" "$tmp/authorized_keys"
printf '#!/bin/sh\necho "$*" >> %s/systemctl.log\n' "$tmp" > "$tmp/bin/systemctl"
chmod 755 "$tmp/bin/systemctl"
# A free loopback port (ss is in iproute2).
while :; do
  port=$((20000 + RANDOM % 30000))
  ss -Hltn "sport = :$port" | grep -q . || break
done
cat > "$tmp/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $tmp/host_key
PidFile none
AuthorizedKeysFile $tmp/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
SetEnv PATH=$tmp/bin:/usr/sbin:/usr/bin:/sbin:/bin
MaxStartups 200
MaxSessions 200
EOF
/usr/sbin/sshd -D -e -f "$tmp/sshd_config" 2>"$tmp/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do grep -q 'Server listening' "$tmp/sshd.log" && break; sleep 0.05; done
grep -q 'Server listening' "$tmp/sshd.log" || { cat "$tmp/sshd.log" >&2; exit 3; }
echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$tmp/host_key.pub")" > "$tmp/known_hosts"

# $files files of ~2 KiB (certificates and configs are that size), the same for every node.
for ((i = 0; i < files; i++)); do
  head -c 2048 /dev/urandom | base64 > "$tmp/out/file-$i.pem"
done

# A document with $1 nodes, each getting every file under $tmp/root/<node>/etc/kubernetes/,
# and two services.
document() {
  local n=$1
  local list
  list=$(for ((i = 0; i < files; i++)); do
    printf '{"src":"file-%d.pem","sha256":"%s","i":%d}\n' "$i" "$(sha256sum "$tmp/out/file-$i.pem" | cut -d' ' -f1)" "$i"
  done | jq -s .)
  jq --argjson n "$n" --argjson list "$list" --arg root "$tmp/root" '
    .nodes[0] as $proto
    | .nodes = [range($n) as $k | $proto
        | .name = "node-\($k + 1)"
        | .files = [$list[] | {src, dest: "\($root)/node-\($k + 1)/etc/kubernetes/pki/file-\(.i).pem",
                               mode: "0600", owner: "root:root", sha256}]
        | .services = ["etcd.service", "kube-apiserver.service"]]
  ' tests/fixtures/lab.json
}
document 1 > "$tmp/one.json"
document "$nodes" > "$tmp/many.json"

common=(--dir "$tmp/out" --identity "$tmp/id_ed25519" --known-hosts "$tmp/known_hosts" --report "$tmp/report.json")
addresses=()
for ((k = 1; k <= nodes; k++)); do addresses+=(--address "node-$k=127.0.0.1:$port"); done
np_one=$(printf '%q ' "$node_push" "${common[@]}" --address "node-1=127.0.0.1:$port")
np_many=$(printf '%q ' "$node_push" "${common[@]}" "${addresses[@]}")

# What a user runs instead: scp per file, then one ssh per node for modes and services.
ssh_opts="-o BatchMode=yes -o UserKnownHostsFile=$tmp/known_hosts -o StrictHostKeyChecking=yes -i $tmp/id_ed25519"
loop() {
  local n=$1 k i dir
  echo 'set -e'
  for ((k = 1; k <= n; k++)); do
    dir="$tmp/root/node-$k/etc/kubernetes/pki"
    echo "ssh $ssh_opts -p $port root@127.0.0.1 'mkdir -p $dir'"
    for ((i = 0; i < files; i++)); do
      echo "scp -q $ssh_opts -P $port $tmp/out/file-$i.pem root@127.0.0.1:$dir/file-$i.pem"
    done
    echo "ssh $ssh_opts -p $port root@127.0.0.1 'chown root:root $dir/* && chmod 0600 $dir/* && systemctl daemon-reload && systemctl enable --now etcd.service kube-apiserver.service'"
  done
}
loop 1 > "$tmp/loop-one.sh"
loop "$nodes" > "$tmp/loop-many.sh"

hyperfine --style none --export-json "$tmp/first.json" --runs "$runs" \
  --prepare "rm -rf $tmp/root" \
  -n node-push "$np_one < $tmp/one.json > /dev/null" \
  -n loop "bash $tmp/loop-one.sh" >&2
# Nothing changed: both start from every file in place.
eval "$np_one" < "$tmp/one.json" > /dev/null
hyperfine --style none --export-json "$tmp/again.json" --runs "$runs" \
  -n node-push "$np_one < $tmp/one.json > /dev/null" \
  -n loop "bash $tmp/loop-one.sh" >&2
hyperfine --style none --export-json "$tmp/many-run.json" --runs "$(( (runs + 2) / 3 ))" \
  --prepare "rm -rf $tmp/root" \
  -n node-push "$np_many < $tmp/many.json > /dev/null" \
  -n loop "bash $tmp/loop-many.sh" >&2

row() {
  jq -r --arg case "$2" --arg alt "$3" '
    (.results[] | select(.command == "node-push") | .median * 1000) as $h
    | (.results[] | select(.command == "loop") | .median * 1000) as $a
    | "| \($case) | \($h | . * 10 | round / 10) | \($a | . * 10 | round / 10) (\($alt)) | \($h / $a | . * 100 | round / 100) |"
  ' "$1"
}
echo "### node-push"
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"
row "$tmp/first.json" "first push, 1 node × $files files" "scp loop + ssh chmod/systemctl"
row "$tmp/again.json" "re-push, nothing changed" "the same scp loop (no skip)"
row "$tmp/many-run.json" "first push, $nodes nodes × $files files" "scp loop, node after node"
echo
echo "Against a loopback sshd (OpenSSH, ed25519 host key), files ~2.7 KiB, times in ms (median)."
echo
