complete -c mkcluster -l format -d 'Inventory layout: csv, or machines (KTHW\'s machines.txt)' -r -f -a "csv\t''
machines\t''"
complete -c mkcluster -l name -d 'Cluster name (a DNS label; also the libvirt network\'s name)' -r
complete -c mkcluster -l domain -d 'DNS domain of the nodes: fqdn = name.domain' -r
complete -c mkcluster -l cluster-domain -d 'Kubernetes\' cluster DNS domain' -r
complete -c mkcluster -l kubernetes-version -d 'Kubernetes version, like v1.37.2; supported minors: v1.35, v1.36, v1.37' -r
complete -c mkcluster -l container-runtime -d 'Container runtime on the nodes that run pods: containerd-2 (upstream\'s 2.x, scripts/fetch-kubernetes.sh), containerd-1 (Debian\'s 1.6/1.7; Kubernetes v1.35 only) or cri-o' -r -f -a "containerd-2\t''
containerd-1\t''
cri-o\t''"
complete -c mkcluster -l kube-proxy-mode -d 'kube-proxy\'s mode (IPVS is deprecated upstream and not offered)' -r -f -a "iptables\t''
nftables\t''"
complete -c mkcluster -l node-network -d 'Node network; repeat with an IPv4 and an IPv6 range for dual-stack' -r
complete -c mkcluster -l pod-network -d 'Pod network (cluster CIDR); repeat with an IPv4 and an IPv6 range for dual-stack' -r
complete -c mkcluster -l service-network -d 'Service network (cluster IPs); repeat with an IPv4 and an IPv6 range for dual-stack' -r
complete -c mkcluster -l pod-prefix -d 'Prefix length of each node\'s pod CIDR, one per --pod-network in the same order [default: 24 for IPv4, 64 for IPv6]' -r
complete -c mkcluster -l pod-routing -d 'How pods reach other nodes\' pods: static routes, or flannel (vxlan)' -r -f -a "routes\t''
flannel\t''"
complete -c mkcluster -l api-vip -d 'Address the API is reached at [default: cidr-alloc picks one]' -r
complete -c mkcluster -l controller-vip -d 'The controllers\' own VIP when --api-vip is a load balancer\'s' -r
complete -c mkcluster -l api-port -d 'Port of the API server' -r
complete -c mkcluster -l hypervisor -d 'A hypervisor of several: its name (the inventory\'s host column), its libvirt URI, and its address on the network joining the hypervisors; repeat per machine' -r
complete -c mkcluster -l allow-unsupported-version -d 'Accept an end-of-life or unknown --kubernetes-version; recorded in the document (cluster.allow_unsupported_version), so later tools render it with the nearest supported release\'s flags and say so'
complete -c mkcluster -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mkcluster -s V -l version -d 'Print version'
