#!/usr/bin/env bash
# Fuzzes the readers of untrusted text — the cluster document (hardway::doc::from_str) and the
# CSV / machines.txt inventories (mkcluster) — and the document-to-files paths of mkcerts and
# mkunits, each reader for ${FUZZ_SECONDS:-60} s and each document-to-files target half that, from
# the examples and fixtures. Only the stable toolchain is installed here and in CI: cargo-fuzz
# needs nightly flags, which RUSTC_BOOTSTRAP=1 allows. No sanitizer: the code has no unsafe
# (the workspace denies it), so a panic is what there is to find, and the build is minutes faster.
# Exits non-zero when a target finds a crash; the input is kept in fuzz/artifacts/.
set -euo pipefail

cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
export RUSTC_BOOTSTRAP=1
# Its own target dir: the fuzz build's flags would otherwise rebuild the workspace's.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The document-to-files paths (mkcerts' plan, mkunits' render) get half the time each: they
# start from the same fixtures as doc_reader and only add their checks on what it accepts, so
# `make test` grows by one FUZZ_SECONDS, not two.
half=$(( (seconds + 1) / 2 ))
# target  seed directory (read, never written)  seconds
targets=(
    "doc_reader tests/fixtures $seconds"
    "inventory_reader examples $seconds"
    "mkcerts_plan tests/fixtures $half"
    "mkunits_render tests/fixtures $half"
)
for entry in "${targets[@]}"; do
    read -r target seeds seconds <<<"$entry"
    mkdir -p "$work/$target"
    echo "fuzz: $target for ${seconds}s (seeds from $seeds/)" >&2
    # libFuzzer prints a line per new input (megabytes in CI's log): keep them in a file and show
    # the final statistics, or the whole tail with the crash report when a target fails.
    log="$work/$target.log"
    if cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" "$work/$target" "$seeds" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^(stat::|Done [0-9]+ runs)' "$log" >&2 || tail -n 5 "$log" >&2
    else
        tail -n 80 "$log" >&2
        echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
