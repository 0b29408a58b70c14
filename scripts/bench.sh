#!/usr/bin/env bash
# make bench: every tool against what a user would otherwise run, in one run, on this machine.
# Each scripts/bench/<tool>.sh prints a markdown section; this collects them into
# bench/results.md with the machine they ran on. Benchmarks are not tests: nothing here fails on a
# slow figure, only on a broken run.
set -euo pipefail
cd "$(dirname "$0")/.."
export HARDWAY_BIN=${HARDWAY_BIN:-$PWD/target/release}
out=bench/results.md
mkdir -p bench
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# hardway benchmarks"
  echo
  echo "Run on $(date -u +%Y-%m-%d): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"
  echo "$(free -g | awk '/^Mem:/ {print $2}') GiB, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)."
  echo "Times are wall-clock medians from hyperfine unless a section says otherwise; ratio = hardway / alternative (below 1 is faster)."
  echo
} > "$tmp"
status=0
for script in scripts/bench/*.sh; do
  case "$script" in */pki-openssl.sh) continue ;; esac
  name=$(basename "$script" .sh)
  echo "bench: $name" >&2
  if ! bash "$script" >> "$tmp"; then
    echo "bench: $name failed" >&2
    printf '### %s\n\nfailed: see the run'"'"'s stderr\n\n' "$name" >> "$tmp"
    status=1
  fi
  echo >> "$tmp"
done
mv "$tmp" "$out"
trap - EXIT
echo "bench: wrote $out" >&2
exit $status
