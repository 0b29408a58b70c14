#!/usr/bin/env bash
# The PKI mkcerts makes, made the way the hard-way guides do it: one openssl call per
# certificate (OpenSSL 3's `req -x509 -CA`, the fastest form: key, request and signature in one
# process), plus the service-account key pair and the Secrets encryption config. With
# --kubeconfigs it also writes the kubeconfigs with `kubectl config`, as Kubernetes the Hard Way
# does. Used by scripts/bench/mkcerts.sh as the alternative to time against.
#
#   scripts/bench/pki-openssl.sh DOCUMENT OUT [--kubeconfigs]
#
# ALG=ecdsa-p256|ecdsa-p384|rsa-2048|rsa-4096 picks the key algorithm (default ecdsa-p256).
# Needs openssl 3, jq (and kubectl for --kubeconfigs).
set -euo pipefail

doc=$1
out=$2
kubeconfigs=${3:-}
alg=${ALG:-ecdsa-p256}
case "$alg" in
  ecdsa-p256) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  ecdsa-p384) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-384) ;;
  rsa-2048) newkey=(-newkey rsa:2048) ;;
  rsa-4096) newkey=(-newkey rsa:4096) ;;
  *) echo "pki-openssl.sh: error: unknown ALG $alg" >&2; exit 2 ;;
esac

umask 077
mkdir -p "$out/ca" "$out/cluster" "$out/kubeconfigs"
cluster=$(jq -r '.cluster.name' "$doc")
domain=$(jq -r '.cluster.cluster_domain' "$doc")
port=$(jq -r '.cluster.api.port' "$doc")
endpoint=$(jq -r '.cluster.api.endpoint // ("https://" + .cluster.api.vip + ":" + (.cluster.api.port|tostring))' "$doc")

# ca NAME
ca() {
  openssl req -x509 "${newkey[@]}" -nodes -days 3650 -subj "/CN=$1/O=$cluster" \
    -keyout "$out/ca/$1-key.pem" -out "$out/ca/$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" 2>/dev/null
}

# leaf CA DIR NAME SUBJECT EKU [SANS]
leaf() {
  local ca=$1 dir=$2 name=$3 subject=$4 eku=$5 sans=${6:-}
  local ext=(-addext "basicConstraints=critical,CA:FALSE" -addext "keyUsage=critical,digitalSignature"
             -addext "extendedKeyUsage=$eku")
  [ -n "$sans" ] && ext+=(-addext "subjectAltName=$sans")
  mkdir -p "$out/$dir"
  openssl req -x509 -CA "$out/ca/$ca.pem" -CAkey "$out/ca/$ca-key.pem" "${newkey[@]}" -nodes \
    -days 365 -subj "$subject" -keyout "$out/$dir/$name-key.pem" -out "$out/$dir/$name.pem" \
    "${ext[@]}" 2>/dev/null
}

# node_sans NAME: DNS:name,DNS:fqdn,IP:ip...
node_sans() {
  jq -r --arg n "$1" '.nodes[] | select(.name == $n)
    | (["DNS:" + .name] + (if .fqdn then ["DNS:" + .fqdn] else [] end) + [.ips[] | "IP:" + .])
    | join(",")' "$doc"
}
nodes_with() { jq -r --arg r "$1" '.nodes[] | select(.roles | index($r)) | .name' "$doc"; }

ca kubernetes-ca
ca etcd-ca
ca front-proxy-ca

for n in $(nodes_with etcd); do
  sans="$(node_sans "$n"),DNS:localhost,IP:127.0.0.1,IP:::1"
  leaf etcd-ca "nodes/$n" etcd-server "/CN=$n" serverAuth,clientAuth "$sans"
  leaf etcd-ca "nodes/$n" etcd-peer "/CN=$n" serverAuth,clientAuth "$sans"
done
leaf etcd-ca cluster etcd-healthcheck-client "/CN=kube-etcd-healthcheck-client" clientAuth
leaf etcd-ca cluster apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth

service_ips=$(jq -r '[.cluster.service_ips.kubernetes[] | "IP:" + .] | join(",")' "$doc")
# mkcerts names the API VIP only when a node holds it (hardway::vip); the bench's document has one.
extra=$(jq -r '[(.cluster.api.vip // empty)] | map("IP:" + .) | join(",")' "$doc")
lbs=$(for l in $(nodes_with lb); do node_sans "$l"; done | paste -sd, -)
for n in $(nodes_with controller); do
  sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$domain"
  sans="$sans,$service_ips,$(node_sans "$n")${extra:+,$extra}${lbs:+,$lbs},DNS:localhost,IP:127.0.0.1"
  leaf kubernetes-ca "nodes/$n" kube-apiserver "/CN=kube-apiserver" serverAuth "$sans"
done
leaf kubernetes-ca cluster apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
leaf front-proxy-ca cluster front-proxy-client "/CN=front-proxy-client" clientAuth
leaf kubernetes-ca cluster kube-controller-manager "/O=system:kube-controller-manager/CN=system:kube-controller-manager" clientAuth
leaf kubernetes-ca cluster kube-scheduler "/O=system:kube-scheduler/CN=system:kube-scheduler" clientAuth
leaf kubernetes-ca cluster admin "/O=system:masters/CN=admin" clientAuth
for n in $(nodes_with worker); do
  leaf kubernetes-ca "nodes/$n" kubelet "/O=system:nodes/CN=system:node:$n" serverAuth,clientAuth "$(node_sans "$n")"
done
leaf kubernetes-ca cluster kube-proxy "/O=system:node-proxier/CN=system:kube-proxy" clientAuth

case "$alg" in
  rsa-*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${alg#rsa-}" -out "$out/cluster/sa.key" 2>/dev/null ;;
  *) openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:P-${alg#ecdsa-p}" -out "$out/cluster/sa.key" 2>/dev/null ;;
esac
openssl pkey -in "$out/cluster/sa.key" -pubout -out "$out/cluster/sa.pub"
cat > "$out/cluster/encryption-config.yaml" <<YAML
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources:
  - secrets
  providers:
  - secretbox:
      keys:
      - name: key1
        secret: $(head -c 32 /dev/urandom | base64)
  - identity: {}
YAML

[ "$kubeconfigs" = --kubeconfigs ] || exit 0
# kubeconfig FILE USER SERVER CERT-DIR CERT-NAME
kubeconfig() {
  local file=$1 user=$2 server=$3 dir=$4 name=$5
  kubectl config set-cluster "$cluster" --certificate-authority="$out/ca/kubernetes-ca.pem" \
    --embed-certs=true --server="$server" --kubeconfig="$file" >/dev/null
  kubectl config set-credentials "$user" --client-certificate="$out/$dir/$name.pem" \
    --client-key="$out/$dir/$name-key.pem" --embed-certs=true --kubeconfig="$file" >/dev/null
  kubectl config set-context default --cluster="$cluster" --user="$user" --kubeconfig="$file" >/dev/null
  kubectl config use-context default --kubeconfig="$file" >/dev/null
}
local_api="https://127.0.0.1:$port"
kubeconfig "$out/kubeconfigs/admin.kubeconfig" admin "$local_api" cluster admin
kubeconfig "$out/kubeconfigs/kube-controller-manager.kubeconfig" system:kube-controller-manager "$local_api" cluster kube-controller-manager
kubeconfig "$out/kubeconfigs/kube-scheduler.kubeconfig" system:kube-scheduler "$local_api" cluster kube-scheduler
kubeconfig "$out/kubeconfigs/kube-proxy.kubeconfig" system:kube-proxy "$endpoint" cluster kube-proxy
for n in $(nodes_with worker); do
  kubeconfig "$out/nodes/$n/kubelet.kubeconfig" "system:node:$n" "$endpoint" "nodes/$n" kubelet
done
