#!/usr/bin/env bash
# mkunits on docs/sources.md#seed-003's 9-node document (after mkcerts, as the pipeline runs it): rendering every
# node's units and configs into an empty directory, and a re-run on its own output (everything
# compared, nothing written). There is no tool a user would otherwise run for this — the guides
# write these files by hand in an editor — so the alternative column is "-".
# Prints a markdown table. Needs hyperfine and jq.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${HARDWAY_BIN:-target/release}
mkunits=$(realpath "$bin/mkunits")
runs=${RUNS:-20}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$mkunits" ] || { echo "mkunits.sh: error: $mkunits is not built (make release)" >&2; exit 2; }
[ -x "$bin/route-sync" ] || { echo "mkunits.sh: error: $bin/route-sync is not built (make release)" >&2; exit 2; }
for tool in hyperfine jq; do
  command -v "$tool" >/dev/null || { echo "mkunits.sh: error: $tool is missing (scripts/deps.sh)" >&2; exit 2; }
done

# The document: the 9-node fixture, with its PKI when mkcerts is built (as in the pipeline).
doc=$tmp/cluster.json
if [ -x "$bin/mkcerts" ]; then
  "$bin/mkcerts" --dir "$tmp/pki-out" < tests/fixtures/ebook-dualstack.json > "$doc" 2>/dev/null
else
  cp tests/fixtures/ebook-dualstack.json "$doc"
fi
files=$("$mkunits" --dir "$tmp/count" --bin-dir "$bin" < "$doc" 2>/dev/null \
  | jq '[.nodes[].files[] | select(.src | startswith("nodes/") or startswith("bin/"))] | length')

median_ms() { jq -r '.results[0].median * 1000' "$1"; }

hyperfine --style none --runs "$runs" --warmup 2 --export-json "$tmp/fresh.json" \
  --prepare "rm -rf $tmp/out" \
  "$mkunits --dir $tmp/out --bin-dir $bin < $doc > /dev/null 2>&1" >/dev/null
"$mkunits" --dir "$tmp/out" --bin-dir "$bin" < "$doc" > "$tmp/rendered.json" 2>/dev/null
hyperfine --style none --runs "$runs" --warmup 2 --export-json "$tmp/again.json" \
  "$mkunits --dir $tmp/out --bin-dir $bin < $tmp/rendered.json > /dev/null 2>&1" >/dev/null

echo "### mkunits"
echo
echo "9 nodes (tests/fixtures/ebook-dualstack.json), $files file entries; no alternative tool exists."
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"
awk -v t="$(median_ms "$tmp/fresh.json")" 'BEGIN { printf "| 9 nodes, empty directory | %.1f | - | - |\n", t }'
awk -v t="$(median_ms "$tmp/again.json")" 'BEGIN { printf "| 9 nodes, re-run (nothing written) | %.1f | - | - |\n", t }'
