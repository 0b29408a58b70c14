# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mkvm_global_optspecs
    string join \n f/file= c/connect= pool= h/help V/version
end

function __fish_mkvm_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mkvm_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mkvm_using_subcommand
    set -l cmd (__fish_mkvm_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mkvm -n "__fish_mkvm_needs_command" -s f -l file -d 'Read the cluster document from FILE instead of stdin' -r -F
complete -c mkvm -n "__fish_mkvm_needs_command" -s c -l connect -d 'libvirt URI [default: hypervisor.uri, else qemu:///system]; a node\'s `host` overrides it' -r
complete -c mkvm -n "__fish_mkvm_needs_command" -l pool -d 'Storage pool for the volumes [default: hypervisor.pool, else hardway]; made as a dir pool if missing' -r
complete -c mkvm -n "__fish_mkvm_needs_command" -s h -l help -d 'Print help'
complete -c mkvm -n "__fish_mkvm_needs_command" -s V -l version -d 'Print version'
complete -c mkvm -n "__fish_mkvm_needs_command" -f -a "up" -d 'Create the network, volumes and domains, start them, wait, and print the document'
complete -c mkvm -n "__fish_mkvm_needs_command" -f -a "down" -d 'Stop and remove the domains, volumes, network (and pool) mkvm made for this cluster'
complete -c mkvm -n "__fish_mkvm_needs_command" -f -a "status" -d 'Report each node\'s domain, state and address'
complete -c mkvm -n "__fish_mkvm_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l image -d 'Base image (qcow2 or raw) each node\'s overlay is backed by' -r -F
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l ssh-key -d 'SSH public key root may log in with; its private key (PUB without .pub) is used for --wait cloud-init' -r -F
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l wait -d 'Last stage to wait for on every node' -r -f -a "none\t''
running\t''
address\t''
ssh\t''
cloud-init\t''"
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l timeout -d 'Time each node may take to reach the --wait stage' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l domain-type -d 'auto: kvm when the host offers it, else qemu (TCG)' -r -f -a "auto\t''
kvm\t''
qemu\t''"
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l pool-dir -d 'Directory of the pool when mkvm creates it [default: /var/lib/libvirt/images/POOL]' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l fail-after-node -d 'Tests only: fail after creating the K-th node on each hypervisor, to prove the rollback' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -s f -l file -d 'Read the cluster document from FILE instead of stdin' -r -F
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -s c -l connect -d 'libvirt URI [default: hypervisor.uri, else qemu:///system]; a node\'s `host` overrides it' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l pool -d 'Storage pool for the volumes [default: hypervisor.pool, else hardway]; made as a dir pool if missing' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l no-start -d 'Define everything but start no domain (and wait for nothing)'
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l recreate -d 'Replace nodes (and the network) whose size or seed changed'
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l prune -d 'Remove the domains of nodes the document no longer lists, with their overlay and seed volumes, on the hypervisors the document\'s nodes use; only domains carrying mkvm\'s mark for this cluster (and the volumes that mark names), never a same-named domain or volume of anyone else\'s. Without it they are reported on stderr and kept'
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l overcommit -d 'Allow more guest memory than the host has available: on this machine MemAvailable (free memory plus the page cache the kernel can reclaim), on a remote hypervisor libvirt\'s free memory'
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -l dry-run -d 'Print the network, pool, volume and domain XML as JSON; change nothing'
complete -c mkvm -n "__fish_mkvm_using_subcommand up" -s h -l help -d 'Print help'
complete -c mkvm -n "__fish_mkvm_using_subcommand down" -s f -l file -d 'Read the cluster document from FILE instead of stdin' -r -F
complete -c mkvm -n "__fish_mkvm_using_subcommand down" -s c -l connect -d 'libvirt URI [default: hypervisor.uri, else qemu:///system]; a node\'s `host` overrides it' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand down" -l pool -d 'Storage pool for the volumes [default: hypervisor.pool, else hardway]; made as a dir pool if missing' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand down" -l dry-run -d 'Print what would be removed; change nothing'
complete -c mkvm -n "__fish_mkvm_using_subcommand down" -s h -l help -d 'Print help'
complete -c mkvm -n "__fish_mkvm_using_subcommand status" -s o -l output -d 'Report format' -r -f -a "json\t''
table\t''"
complete -c mkvm -n "__fish_mkvm_using_subcommand status" -s f -l file -d 'Read the cluster document from FILE instead of stdin' -r -F
complete -c mkvm -n "__fish_mkvm_using_subcommand status" -s c -l connect -d 'libvirt URI [default: hypervisor.uri, else qemu:///system]; a node\'s `host` overrides it' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand status" -l pool -d 'Storage pool for the volumes [default: hypervisor.pool, else hardway]; made as a dir pool if missing' -r
complete -c mkvm -n "__fish_mkvm_using_subcommand status" -s h -l help -d 'Print help'
complete -c mkvm -n "__fish_mkvm_using_subcommand help; and not __fish_seen_subcommand_from up down status help" -f -a "up" -d 'Create the network, volumes and domains, start them, wait, and print the document'
complete -c mkvm -n "__fish_mkvm_using_subcommand help; and not __fish_seen_subcommand_from up down status help" -f -a "down" -d 'Stop and remove the domains, volumes, network (and pool) mkvm made for this cluster'
complete -c mkvm -n "__fish_mkvm_using_subcommand help; and not __fish_seen_subcommand_from up down status help" -f -a "status" -d 'Report each node\'s domain, state and address'
complete -c mkvm -n "__fish_mkvm_using_subcommand help; and not __fish_seen_subcommand_from up down status help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
