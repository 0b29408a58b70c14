# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mkunits_global_optspecs
    string join \n f/file= container-runtime= pod-network= etcd-profile= etcd-heartbeat= etcd-election-timeout= etcd-snapshot-count= cni-bin-dir= vrrp-interface= d/dir= lock-timeout= bin-dir= kubernetes-bin-dir= previous= dry-run h/help V/version
end

function __fish_mkunits_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mkunits_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mkunits_using_subcommand
    set -l cmd (__fish_mkunits_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mkunits -n "__fish_mkunits_needs_command" -s f -l file -d 'Read the cluster document from FILE instead of stdin (\'-\' is stdin)' -r -F
complete -c mkunits -n "__fish_mkunits_needs_command" -l container-runtime -d 'Fail (exit 2) unless the document\'s cluster.container_runtime is RUNTIME; the runtime is chosen with mkcluster --container-runtime' -r -f -a "containerd-2\t''
containerd-1\t''
cri-o\t''"
complete -c mkunits -n "__fish_mkunits_needs_command" -l pod-network -d 'Fail (exit 2) unless the document\'s cluster.pod_network is KIND; it is chosen with mkcluster --pod-routing, before mkcerts makes the certificates it needs' -r -f -a "routes\t''
flannel\t''"
complete -c mkunits -n "__fish_mkunits_needs_command" -l etcd-profile -d 'etcd timing: default = heartbeat 100 ms, election 1000 ms, snapshot-count 100000; slow (slow disks and CPUs) = 1000 / 5000 / 5000' -r -f -a "default\t''
slow\t''"
complete -c mkunits -n "__fish_mkunits_needs_command" -l etcd-heartbeat -d 'etcd --heartbeat-interval in ms (overrides the profile)' -r
complete -c mkunits -n "__fish_mkunits_needs_command" -l etcd-election-timeout -d 'etcd --election-timeout in ms (overrides the profile; at least 5 heartbeats)' -r
complete -c mkunits -n "__fish_mkunits_needs_command" -l etcd-snapshot-count -d 'etcd --snapshot-count (overrides the profile)' -r
complete -c mkunits -n "__fish_mkunits_needs_command" -l cni-bin-dir -d 'Where the CNI plugins are on the nodes (Debian\'s containernetworking-plugins)' -r
complete -c mkunits -n "__fish_mkunits_needs_command" -l vrrp-interface -d 'Interface on the nodes that holds the API VIP (keepalived)' -r
complete -c mkunits -n "__fish_mkunits_needs_command" -s d -l dir -d 'Output directory (the same as mkcerts\'); files go to OUT/nodes/<node>/' -r -F
complete -c mkunits -n "__fish_mkunits_needs_command" -l lock-timeout -d 'Wait at most SECONDS for another run on the same --dir to finish (each run holds an flock on DIR/.hardway.lock from start to end); then exit 3. 0: fail at once' -r
complete -c mkunits -n "__fish_mkunits_needs_command" -l bin-dir -d 'Where the hardway binaries nodes need (route-sync) are; default: the directory of this mkunits' -r -F
complete -c mkunits -n "__fish_mkunits_needs_command" -l kubernetes-bin-dir -d 'Ship Kubernetes\' server binaries from DIR (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy; with containerd-2 also containerd, containerd-shim-runc-v2 and runc) to /usr/local/bin on the nodes whose roles run them, as scripts/fetch-kubernetes.sh VERSION DIR lays them out; default: ship none' -r -F
complete -c mkunits -n "__fish_mkunits_needs_command" -l previous -d 'The document the running cluster was built from: refuse (exit 2) a kubernetes_version that skips a minor or goes back one from FILE\'s, as kubeadm upgrade does (patch releases and the next minor are fine), and remove from OUT the files FILE lists that no node gets any more (a removed node\'s). A missing FILE counts as none (the first build)' -r -F
complete -c mkunits -n "__fish_mkunits_needs_command" -l dry-run -d 'Print which files would be created, updated or left as they are; write nothing'
complete -c mkunits -n "__fish_mkunits_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mkunits -n "__fish_mkunits_needs_command" -s V -l version -d 'Print version'
complete -c mkunits -n "__fish_mkunits_needs_command" -f -a "ports" -d 'Per node, every port its components listen on and who must reach it'
complete -c mkunits -n "__fish_mkunits_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -s f -l file -d 'Read the cluster document from FILE instead of stdin (\'-\' is stdin)' -r -F
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l container-runtime -d 'Fail (exit 2) unless the document\'s cluster.container_runtime is RUNTIME; the runtime is chosen with mkcluster --container-runtime' -r -f -a "containerd-2\t''
containerd-1\t''
cri-o\t''"
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l pod-network -d 'Fail (exit 2) unless the document\'s cluster.pod_network is KIND; it is chosen with mkcluster --pod-routing, before mkcerts makes the certificates it needs' -r -f -a "routes\t''
flannel\t''"
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l etcd-profile -d 'etcd timing: default = heartbeat 100 ms, election 1000 ms, snapshot-count 100000; slow (slow disks and CPUs) = 1000 / 5000 / 5000' -r -f -a "default\t''
slow\t''"
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l etcd-heartbeat -d 'etcd --heartbeat-interval in ms (overrides the profile)' -r
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l etcd-election-timeout -d 'etcd --election-timeout in ms (overrides the profile; at least 5 heartbeats)' -r
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l etcd-snapshot-count -d 'etcd --snapshot-count (overrides the profile)' -r
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l cni-bin-dir -d 'Where the CNI plugins are on the nodes (Debian\'s containernetworking-plugins)' -r
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -l vrrp-interface -d 'Interface on the nodes that holds the API VIP (keepalived)' -r
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -s o -l output -d 'json, or table for people' -r -f -a "json\t''
table\t''"
complete -c mkunits -n "__fish_mkunits_using_subcommand ports" -s h -l help -d 'Print help'
complete -c mkunits -n "__fish_mkunits_using_subcommand help; and not __fish_seen_subcommand_from ports help" -f -a "ports" -d 'Per node, every port its components listen on and who must reach it'
complete -c mkunits -n "__fish_mkunits_using_subcommand help; and not __fish_seen_subcommand_from ports help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
