#!/usr/bin/env bash
# smoke.sh DOC OUT: smoke tests against a running cluster made by `make cluster K8S_BIN=DIR`.
#
# Kubernetes the Hard Way's own (docs/12-smoke-test.md): a Secret encrypted at rest, read back
# from etcd with etcdctl and shown with hexdump; a Deployment; port-forward; logs; exec; a
# NodePort Service. Then what the hard way leaves out: cluster DNS (`kubernetes.default`
# resolves from a pod to the kubernetes Service's address), the NodePort answered on every node
# that runs kube-proxy, and pod-to-pod across two nodes with the client pod's own address seen by
# the server (no NAT between pods).
#
# It needs the Kubernetes server binaries, which CI does not have: `make cluster` runs it only
# when K8S_BIN is given, and CI only checks it with `bash -n` and shellcheck (tests/e2e). It
# reaches the nodes with the SSH key and known_hosts `make cluster` uses (scripts/lib.sh) and the
# API with the admin credentials through the document's API endpoint. KUBECONFIG=FILE overrides.
# Exit 0 all passed, 1 a test failed (one line on stderr says which), 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
[ $# -eq 2 ] || { echo "usage: smoke.sh DOC OUT" >&2; exit 2; }
doc=$1
out=$2
hardway_ssh_init "$out"
fail() { echo "smoke: error: $*" >&2; exit 1; }
step() { echo "smoke: $*" >&2; }
# expect TEXT PATTERN WHAT: the output was captured first, so no producer dies of SIGPIPE when
# grep -q stops reading early, which pipefail would report as a failure.
expect() { grep -qE -- "$2" <<<"$1" || fail "$3"; }

work=$(mktemp -d)
cleanup() {
  [ -z "${pf:-}" ] || kill "$pf" 2>/dev/null || true
  kubectl delete --ignore-not-found --wait=false secret/hardway-smoke deployment/hardway-nginx \
    service/hardway-nginx pod/hardway-dns pod/hardway-web pod/hardway-client >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The admin credentials through the API endpoint (the VIP, else the first controller):
# mkcerts' admin-external.kubeconfig where it writes one, else a copy of the node-local
# admin.kubeconfig (server 127.0.0.1) pointed at the endpoint.
if [ -z "${KUBECONFIG:-}" ] && [ -f "$out/pki/kubeconfigs/admin-external.kubeconfig" ]; then
  export KUBECONFIG=$out/pki/kubeconfigs/admin-external.kubeconfig
elif [ -z "${KUBECONFIG:-}" ]; then
  cp "$out/pki/kubeconfigs/admin.kubeconfig" "$work/admin.kubeconfig"
  endpoint=$(jq -r '.cluster.api.port as $port | .cluster.api.endpoint
    // ([.nodes[] | select(.roles | index("controller"))][0] | "https://\(.ips[0]):\($port)")' "$doc")
  kubectl --kubeconfig "$work/admin.kubeconfig" config set-cluster \
    "$(kubectl --kubeconfig "$work/admin.kubeconfig" config view -o jsonpath='{.clusters[0].name}')" \
    --server "$endpoint" >/dev/null
  export KUBECONFIG=$work/admin.kubeconfig
fi

step "secret encrypted at rest"
kubectl create secret generic hardway-smoke --from-literal=mykey=mydata --dry-run=client -o yaml \
  | kubectl apply -f - >/dev/null
# The prefix the apiserver writes: k8s:enc:<provider>:v1:<key name>, from the first provider of
# the encryption config mkcerts wrote (secretbox today; the hard way's edition uses aescbc).
config=$out/$(jq -r '[.nodes[].files[] | select(.dest == "/var/lib/kubernetes/encryption-config.yaml")][0].src' "$doc")
provider=$(awk '/providers:/ { p = 1; next } p && /- [a-z]+:/ { sub(/.*- /, ""); sub(/:.*/, ""); print; exit }' "$config")
key_name=$(awk '/keys:/ { k = 1; next } k && /name:/ { sub(/.*name: */, ""); print; exit }' "$config")
prefix="k8s:enc:$provider:v1:$key_name:"
etcd_ip=$(jq -r '[.nodes[] | select(.roles | index("etcd"))][0].ips[0]' "$doc")
# Client certificate and CA where mkcerts puts them on etcd members (shared/src/paths.rs, etcd).
etcdctl_get="etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/ca.pem \
  --cert=/etc/etcd/healthcheck-client.pem --key=/etc/etcd/healthcheck-client-key.pem \
  get /registry/secrets/default/hardway-smoke --print-value-only"
node_ssh "$etcd_ip" "$etcdctl_get" > "$work/secret.bin"
hexdump -C -n 96 "$work/secret.bin" >&2
stored=$(head -c ${#prefix} "$work/secret.bin")
[ "$stored" = "$prefix" ] || fail "the secret is not encrypted at rest: etcd's value starts with '${stored}', not '$prefix'"

step "deployment"
kubectl create deployment hardway-nginx --image=nginx:stable --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl rollout status deployment/hardway-nginx --timeout=300s >&2
pod=$(kubectl get pods -l app=hardway-nginx -o jsonpath='{.items[0].metadata.name}')

step "port-forward"
kubectl port-forward "$pod" 18080:80 >/dev/null 2>&1 &
pf=$!
head=""
for _ in $(seq 30); do head=$(curl -fsI http://127.0.0.1:18080 2>/dev/null) && break; sleep 1; done
expect "$head" '^HTTP/[0-9.]+ 200' "port-forward to $pod did not reach nginx"

step "logs and exec"
expect "$(kubectl logs "$pod")" '"(GET|HEAD) / ' "no request in $pod's logs"
expect "$(kubectl exec "$pod" -- nginx -v 2>&1)" '^nginx version:' "exec did not run nginx -v in $pod"

step "NodePort service, on every node that runs kube-proxy"
kubectl expose deployment hardway-nginx --port 80 --type NodePort --dry-run=client -o yaml | kubectl apply -f - >/dev/null
port=$(kubectl get svc hardway-nginx -o jsonpath='{.spec.ports[0].nodePort}')
for ip in $(jq -r '.nodes[] | select(.services | index("kube-proxy.service")) | .ips[0]' "$doc"); do
  expect "$(curl -fsI --max-time 10 "http://$ip:$port" || true)" '^HTTP/[0-9.]+ 200' "NodePort $port on $ip did not answer"
done

step "DNS: kubernetes.default from a pod"
# Kubernetes' DNS debugging page runs nslookup from this image (dns-debugging-resolution).
kubectl run hardway-dns --image=registry.k8s.io/e2e-test-images/jessie-dnsutils:1.3 --restart=Never \
  --command -- sleep 3600 >/dev/null
kubectl wait --for=condition=Ready pod/hardway-dns --timeout=300s >/dev/null
service_ip=$(jq -r '.cluster.service_ips.kubernetes[0]' "$doc")
expect "$(kubectl exec hardway-dns -- nslookup kubernetes.default 2>&1 || true)" \
  "Address: ${service_ip//./\\.}\$" "kubernetes.default did not resolve to $service_ip from a pod"

step "pod to pod across nodes, source address kept"
mapfile -t ready < <(kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
  | awk '$2 == "True" { print $1 }')
if [ ${#ready[@]} -lt 2 ]; then
  step "pod to pod: skipped, ${#ready[@]} Ready node (needs two)"
else
  kubectl run hardway-web --image=nginx:stable --restart=Never \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"${ready[1]}\"}}" >/dev/null
  kubectl run hardway-client --image=busybox:1.36 --restart=Never --command \
    --overrides="{\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"${ready[0]}\"}}" -- sleep 3600 >/dev/null
  kubectl wait --for=condition=Ready pod/hardway-web pod/hardway-client --timeout=300s >/dev/null
  web_ip=$(kubectl get pod hardway-web -o jsonpath='{.status.podIP}')
  client_ip=$(kubectl get pod hardway-client -o jsonpath='{.status.podIP}')
  expect "$(kubectl exec hardway-client -- wget -qO- "http://$web_ip/" 2>&1 || true)" 'Welcome to nginx' \
    "pod hardway-client on ${ready[0]} did not reach hardway-web ($web_ip) on ${ready[1]}"
  expect "$(kubectl logs hardway-web)" "^${client_ip//./\\.} " \
    "hardway-web did not see the client pod's address $client_ip (pod traffic is NATed)"
fi
step "all passed"
