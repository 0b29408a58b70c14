#!/usr/bin/env bash
# mkcerts against what a user would otherwise run: scripts/bench/pki-openssl.sh, one openssl
# process per certificate (the hard-way guides' method), making the same certificates with the
# same key algorithm for the document of examples/ebook-9node.csv (docs/sources.md#seed-003's 9 nodes), side by
# side in one hyperfine run. Cases: the whole PKI from nothing with ECDSA P-256 (certificates and
# keys; then with kubeconfigs, which the script writes with `kubectl config` as Kubernetes the
# Hard Way does), the same with RSA 2048, and a re-run on a complete PKI (mkcerts checks and
# reuses everything; the script has no such mode and would remake it all).
# Prints a markdown table. Needs hyperfine, openssl 3, jq, kubectl.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${HARDWAY_BIN:-target/release}
mkcerts=$(realpath "$bin/mkcerts")
alternative=$PWD/scripts/bench/pki-openssl.sh
runs=${RUNS:-10}
rsa_runs=${RSA_RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$mkcerts" ] || { echo "mkcerts.sh: error: $mkcerts is not built (make release)" >&2; exit 2; }
for tool in hyperfine openssl jq kubectl; do
  command -v "$tool" >/dev/null || { echo "mkcerts.sh: error: $tool is missing (scripts/deps.sh)" >&2; exit 2; }
done

# The document: mkcluster | cidr-alloc on the example, as the pipeline makes it.
doc=$tmp/cluster.json
if [ -x "$bin/mkcluster" ] && [ -x "$bin/cidr-alloc" ]; then
  "$bin/mkcluster" examples/ebook-9node.csv --api-vip 10.240.0.40 --controller-vip 10.240.0.20 \
    | "$bin/cidr-alloc" > "$doc"
  source_name="examples/ebook-9node.csv"
else
  cp tests/fixtures/ebook-dualstack.json "$doc"
  source_name="tests/fixtures/ebook-dualstack.json"
fi

# median_ms JSON INDEX
median_ms() { jq -r ".results[$2].median * 1000" "$1"; }
row() {
  local name=$1 json=$2 what=$3
  local ours theirs
  ours=$(median_ms "$json" 0)
  theirs=$(median_ms "$json" 1)
  awk -v n="$name" -v a="$ours" -v b="$theirs" -v w="$what" \
    'BEGIN { printf "| %s | %.1f | %.1f (%s) | %.3f |\n", n, a, b, w, a / b }'
}

# compare NAME RUNS ALG WHAT HARDWAY-ARGS... -- ALTERNATIVE-ARGS...
compare() {
  local name=$1 n=$2 alg=$3 what=$4
  shift 4
  local json=$tmp/$RANDOM.json
  hyperfine --style none --runs "$n" --warmup 1 --export-json "$json" \
    --prepare "rm -rf $tmp/a $tmp/b" \
    "$mkcerts --dir $tmp/a --key-algorithm $alg < $doc > /dev/null 2>&1" \
    "ALG=$alg bash $alternative $doc $tmp/b $*" >/dev/null
  row "$name" "$json" "$what"
}

count=$("$mkcerts" --dir "$tmp/count" < "$doc" 2>/dev/null | jq '.pki.certs | length')
echo "### mkcerts"
echo
echo "The PKI of $source_name: $count certificates (3 CAs), their keys, the service-account key pair,"
echo "the encryption config, and 7 kubeconfigs (mkcerts always writes them). Wall-clock medians."
echo
echo "| case | hardway | alternative (what) | ratio |"
echo "|---|---|---|---|"
compare "whole PKI, ecdsa-p256" "$runs" ecdsa-p256 "pki-openssl.sh: openssl req -x509 -CA per cert"
compare "whole PKI + kubeconfigs, ecdsa-p256" "$runs" ecdsa-p256 "pki-openssl.sh --kubeconfigs: + kubectl config" --kubeconfigs
compare "whole PKI, rsa-2048" "$rsa_runs" rsa-2048 "pki-openssl.sh, ALG=rsa-2048"

# A re-run: mkcerts reads and checks everything and writes nothing; the script remakes it all.
"$mkcerts" --dir "$tmp/again" < "$doc" > "$tmp/again.json" 2>/dev/null
json=$tmp/rerun.json
hyperfine --style none --runs "$runs" --warmup 1 --export-json "$json" --prepare "rm -rf $tmp/b" \
  "$mkcerts --dir $tmp/again < $tmp/again.json > /dev/null 2>&1" \
  "ALG=ecdsa-p256 bash $alternative $doc $tmp/b" >/dev/null
row "re-run on a complete PKI (nothing to do)" "$json" "pki-openssl.sh remakes it"
