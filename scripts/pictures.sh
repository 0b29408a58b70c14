#!/usr/bin/env bash
# The pictures of the plan (Graphviz SVG from `cidr-alloc -o dot` and `-o dot-routes`).
#
# Sourced by lab.sh and cluster.sh: `draw_pictures DOC` writes cluster.svg (the infrastructure)
# and routes.svg (the pod routes) beside DOC when Graphviz is installed, and says where.
# Run (`make pictures`): `bash scripts/pictures.sh docs [DIR]` draws examples/ebook-9node.csv
# into DIR (default docs/) as ebook-9node.svg and ebook-9node-routes.svg, the README's pictures.
# Binaries come from PATH, or HARDWAY_BIN (default target/debug) when run.

# draw_pictures DOC: DOC's two pictures beside it; without Graphviz only a note on stderr.
draw_pictures() {
  local doc=$1 dir
  dir=$(dirname "$doc")
  if ! command -v dot >/dev/null 2>&1; then
    printf 'pictures: Graphviz is not installed (scripts/deps.sh installs it): no cluster.svg\n' >&2
    return 0
  fi
  picture dot "$doc" "$dir/cluster.svg" && picture dot-routes "$doc" "$dir/routes.svg" \
    && printf 'pictures: %s (infrastructure), %s (pod routes)\n' "$dir/cluster.svg" "$dir/routes.svg" >&2
}

# picture FORMAT DOC SVG: cidr-alloc -o FORMAT -f DOC | dot -Tsvg, written whole or not at all
# (no pipe, so a failing cidr-alloc fails it with or without pipefail).
picture() {
  local format=$1 doc=$2 svg=$3
  if cidr-alloc -o "$format" -f "$doc" > "$svg.dot" && dot -Tsvg "$svg.dot" > "$svg.tmp"; then
    rm -f "$svg.dot"
    mv "$svg.tmp" "$svg"
  else
    rm -f "$svg.dot" "$svg.tmp"
    printf 'pictures: error: cannot draw %s\n' "$svg" >&2
    return 3
  fi
}

# The README's pictures: the ebook's 9 nodes with its two VIPs (examples/ebook-9node.csv).
readme_pictures() {
  local dir=${1:-docs} tmp
  tmp=$(mktemp -d)
  mkcluster examples/ebook-9node.csv --api-vip 10.240.0.40 --controller-vip 10.240.0.20 \
    | cidr-alloc > "$tmp/cluster.json" \
    && draw_pictures "$tmp/cluster.json" 2>/dev/null \
    && mv "$tmp/cluster.svg" "$dir/ebook-9node.svg" \
    && mv "$tmp/routes.svg" "$dir/ebook-9node-routes.svg"
  local status=$?
  rm -rf "$tmp"
  [ $status -eq 0 ] && printf 'pictures: %s/ebook-9node.svg, %s/ebook-9node-routes.svg\n' "$dir" "$dir" >&2
  return $status
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  export PATH="${HARDWAY_BIN:-$PWD/target/debug}:$PATH"
  case "${1:-}" in
    docs) command -v dot >/dev/null || { echo "pictures: error: needs Graphviz (scripts/deps.sh)" >&2; exit 3; }
          readme_pictures "${2:-docs}" ;;
    *) echo "usage: pictures.sh docs [DIR]" >&2; exit 2 ;;
  esac
fi
