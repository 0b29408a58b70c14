# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_cidr_alloc_global_optspecs
    string join \n f/file= previous= avoid= avoid-host-routes pods-on-controllers o/output= h/help V/version
end

function __fish_cidr_alloc_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_cidr_alloc_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_cidr_alloc_using_subcommand
    set -l cmd (__fish_cidr_alloc_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -s f -l file -d 'The cluster document; \'-\' or none reads stdin' -r -F
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -l previous -d 'An earlier output whose nodes keep their values (missing file: none)' -r -F
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -l avoid -d 'A range the cluster must not overlap (repeatable)' -r
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -s o -l output -d 'json: the document; table: nodes, roles, IPs, pod CIDRs, MACs for people; dot: the infrastructure picture (Graphviz); dot-routes: the pod routes picture' -r -f -a "json\t''
table\t''
dot\t''
dot-routes\t''"
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -l avoid-host-routes -d 'Refuse ranges that overlap this host\'s routes (/proc/net/route, ipv6_route)'
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -l pods-on-controllers -d 'Give controllers a pod CIDR too, not only workers'
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -s V -l version -d 'Print version'
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -f -a "split" -d 'Print the first COUNT subnets of RANGE as a JSON list'
complete -c cidr-alloc -n "__fish_cidr_alloc_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c cidr-alloc -n "__fish_cidr_alloc_using_subcommand split" -l prefix -d 'Prefix length of each subnet' -r
complete -c cidr-alloc -n "__fish_cidr_alloc_using_subcommand split" -l count -d 'How many subnets' -r
complete -c cidr-alloc -n "__fish_cidr_alloc_using_subcommand split" -s h -l help -d 'Print help'
complete -c cidr-alloc -n "__fish_cidr_alloc_using_subcommand help; and not __fish_seen_subcommand_from split help" -f -a "split" -d 'Print the first COUNT subnets of RANGE as a JSON list'
complete -c cidr-alloc -n "__fish_cidr_alloc_using_subcommand help; and not __fish_seen_subcommand_from split help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
