#!/usr/bin/env bash
# Regenerate data/k8s/v1.MINOR/<component>.flags from real Kubernetes binaries' --help.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/k8s-flags.sh K8S_BIN VERSION
       scripts/k8s-flags.sh --parse HELP_FILE

Runs `K8S_BIN/<component> --help` for kube-apiserver, kube-controller-manager, kube-scheduler,
kubelet and kube-proxy of Kubernetes VERSION (v1.37.2: each binary's --version must say so) and
writes data/k8s/v1.37/<component>.flags: every flag the help lists, `deprecated` where its help
text says DEPRECATED, else `ok`. Entries of the existing file that --help does not show are kept
when they are marked deprecated (pflag hides flags marked deprecated) or removed; `ok` entries
that the binary no longer has are dropped. The header comment is rewritten to name the binaries.

Config fields (KubeletConfiguration, KubeProxyConfiguration, KubeSchedulerConfiguration,
EncryptionConfiguration) cannot come from --help: their *.fields files are not touched; update
them from the release's types.go (see each file's header).

K8S_FLAGS_DATA_DIR replaces data/k8s as the directory written (the script's test uses it).

--parse HELP_FILE prints the `NAME STATUS` lines one help text gives (what the test of this
script checks on a captured sample).
EOF
}

# pflag prints a flag as `  -x, --name type   usage` or `      --name type   usage`, the usage
# wrapped onto lines indented past the flag column; cliflag adds `Section flags:` headers.
parse_help() {
    awk '
        function flush() { if (name != "") print name, (text ~ /DEPRECATED/ ? "deprecated" : "ok"); name = "" }
        /^  -[A-Za-z0-9], --[A-Za-z0-9]/ || /^      --[A-Za-z0-9]/ {
            flush()
            line = $0; sub(/^ *(-[A-Za-z0-9], )?--/, "", line)
            name = line; sub(/[ =\[].*$/, "", name)
            text = line
            next
        }
        /^        / { text = text " " $0; next }
        { flush() }
        END { flush() }
    ' "$1"
}

if [ "${1:-}" = "--parse" ] && [ $# -eq 2 ]; then
    parse_help "$2"
    exit 0
fi
if [ $# -ne 2 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    usage >&2
    exit 2
fi

bin=$1 version=$2
if ! [[ $version =~ ^v1\.([0-9]+)\.[0-9]+$ ]]; then
    echo "k8s-flags.sh: VERSION $version is not like v1.37.2" >&2
    exit 2
fi
minor="v1.${BASH_REMATCH[1]}"
root=$(cd "$(dirname "$0")/.." && pwd)
dir="${K8S_FLAGS_DATA_DIR:-$root/data/k8s}/$minor"
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if [ ! -x "$bin/$c" ]; then
        echo "k8s-flags.sh: $bin/$c: not an executable" >&2
        exit 3
    fi
    got=$("$bin/$c" --version 2>&1 | awk '{print $NF}')
    if [ "$got" != "$version" ]; then
        echo "k8s-flags.sh: $bin/$c --version says $got, not $version" >&2
        exit 2
    fi
    # Components print --help on stdout and exit 0; some print usage on stderr.
    "$bin/$c" --help >"$tmp/$c.help" 2>&1 || true
    parse_help "$tmp/$c.help" | sort -u >"$tmp/$c.new"
    if [ ! -s "$tmp/$c.new" ]; then
        echo "k8s-flags.sh: $bin/$c --help listed no flags" >&2
        exit 3
    fi
    kept=""
    if [ -f "$dir/$c.flags" ]; then
        kept=$(awk 'NR==FNR { seen[$1] = 1; next }
                    /^[^#@]/ && !($1 in seen) && ($2 == "deprecated" || $2 == "removed")' \
            "$tmp/$c.new" "$dir/$c.flags")
    fi
    {
        echo "# $c for Kubernetes $minor: every flag, with the deprecated and removed ones marked."
        echo "# Source: \`$c --help\` of the $version binary, by scripts/k8s-flags.sh on $(date -u +%Y-%m-%d)."
        echo "#   Entries marked deprecated or removed that --help does not show were kept from the"
        echo "#   previous file (pflag hides deprecated flags). Format: see the README, Checked against upstream."
        { cat "$tmp/$c.new"; [ -z "$kept" ] || printf '%s\n' "$kept"; } | sort -f -k1,1
    } >"$tmp/$c.flags"
    mv "$tmp/$c.flags" "$dir/$c.flags"
    echo "k8s-flags.sh: $dir/$c.flags: $(grep -c '^[^#]' "$dir/$c.flags") flags" >&2
done
