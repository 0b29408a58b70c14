#!/usr/bin/env bash
# smoke.sh DOC OUT: Kubernetes the Hard Way's smoke tests against a running cluster made by
# `make cluster K8S_BIN=DIR`: a Secret encrypted at rest in etcd, a Deployment, port-forward, logs,
# exec and a NodePort Service. It needs the Kubernetes server binaries, which CI does not have:
# `make cluster` runs it only when K8S_BIN is given.
set -euo pipefail
doc=${1:?usage: smoke.sh DOC OUT}
out=${2:?usage: smoke.sh DOC OUT}
kubeconfig=$(jq -r '.pki.certs[] | select(.name == "admin") | .path' "$doc" | sed 's/\.pem$/.kubeconfig/')
export KUBECONFIG="$out/${KUBECONFIG_PATH:-$kubeconfig}"
[ -f "$KUBECONFIG" ] || KUBECONFIG=$(find "$out/pki" -name 'admin*.kubeconfig' | head -1)
ssh_opts=(-o BatchMode=yes -o StrictHostKeyChecking=yes)
controller_ip=$(jq -r '[.nodes[] | select(.roles | index("etcd"))][0].ips[0]' "$doc")
fail() { echo "smoke: error: $*" >&2; exit 1; }

echo "smoke: secret encrypted at rest" >&2
kubectl create secret generic hardway-smoke --from-literal=mykey=mydata --dry-run=client -o yaml | kubectl apply -f -
stored=$(ssh "${ssh_opts[@]}" "root@$controller_ip" \
  "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/ca.pem \
   --cert=/etc/etcd/healthcheck-client.pem --key=/etc/etcd/healthcheck-client-key.pem \
   get /registry/secrets/default/hardway-smoke --print-value-only" | head -c 64 | tr -d '\0')
case "$stored" in *k8s:enc:*) ;; *) fail "the secret is not encrypted at rest (etcd holds: ${stored:0:20}…)" ;; esac

echo "smoke: deployment" >&2
kubectl create deployment hardway-nginx --image=nginx:stable --dry-run=client -o yaml | kubectl apply -f -
kubectl rollout status deployment/hardway-nginx --timeout=180s
pod=$(kubectl get pods -l app=hardway-nginx -o jsonpath='{.items[0].metadata.name}')

echo "smoke: port-forward" >&2
kubectl port-forward "$pod" 18080:80 >/dev/null 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null || true' EXIT
for _ in $(seq 30); do curl -fsI http://127.0.0.1:18080 >/dev/null 2>&1 && break; sleep 1; done
curl -fsI http://127.0.0.1:18080 | head -1 | grep -q 200 || fail "port-forward did not reach nginx"

echo "smoke: logs and exec" >&2
kubectl logs "$pod" | grep -q 'GET /' || fail "no request in the pod's logs"
kubectl exec "$pod" -- nginx -v 2>&1 | grep -q nginx || fail "exec did not run in the pod"

echo "smoke: NodePort service" >&2
kubectl expose deployment hardway-nginx --port 80 --type NodePort --dry-run=client -o yaml | kubectl apply -f -
port=$(kubectl get svc hardway-nginx -o jsonpath='{.spec.ports[0].nodePort}')
worker_ip=$(jq -r '[.nodes[] | select(.roles | index("worker"))][0].ips[0]' "$doc")
curl -fsI "http://$worker_ip:$port" | head -1 | grep -q 200 || fail "NodePort $port on $worker_ip did not answer"
echo "smoke: all passed" >&2
