# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mkcerts_global_optspecs
    string join \n f/file= dir= lock-timeout= key-algorithm= days= ca-days= renew-before= extra-san= ca-cert= ca-key= etcd-ca-cert= etcd-ca-key= front-proxy-ca-cert= front-proxy-ca-key= dry-run h/help V/version
end

function __fish_mkcerts_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mkcerts_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mkcerts_using_subcommand
    set -l cmd (__fish_mkcerts_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mkcerts -n "__fish_mkcerts_needs_command" -s f -l file -d 'Read the document from FILE instead of stdin (\'-\' is stdin)' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l dir -d 'Output directory: the PKI goes to OUT/pki/, files[].src is relative to OUT' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l lock-timeout -d 'Wait at most SECONDS for another run on the same --dir to finish (each run holds an flock on DIR/.hardway.lock from start to end); then exit 3. 0: fail at once' -r
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l key-algorithm -d 'Algorithm of new keys [default: the document\'s pki.algorithm, else ecdsa-p256]' -r -f -a "ecdsa-p256\t''
ecdsa-p384\t''
rsa-2048\t''
rsa-4096\t''"
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l days -d 'Validity of leaf certificates, in days (at most 36500: 100 years)' -r
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l ca-days -d 'Validity of new CA certificates, in days (at most 36500: 100 years)' -r
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l renew-before -d 'Re-issue a leaf that expires within DURATION: a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d' -r
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l extra-san -d 'Another SAN for the kube-apiserver certificate (repeatable, comma-separated)' -r
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l ca-cert -d 'Use this kubernetes CA certificate instead of making one' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l ca-key -d 'The key of --ca-cert (unencrypted PKCS#8 PEM)' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l etcd-ca-cert -d 'Use this etcd CA certificate instead of making one' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l etcd-ca-key -d 'The key of --etcd-ca-cert' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l front-proxy-ca-cert -d 'Use this front-proxy CA certificate instead of making one' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l front-proxy-ca-key -d 'The key of --front-proxy-ca-cert' -r -F
complete -c mkcerts -n "__fish_mkcerts_needs_command" -l dry-run -d 'Print what would be created, reused or re-issued as JSON; write nothing'
complete -c mkcerts -n "__fish_mkcerts_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mkcerts -n "__fish_mkcerts_needs_command" -s V -l version -d 'Print version'
complete -c mkcerts -n "__fish_mkcerts_needs_command" -f -a "check" -d 'Report every certificate and kubeconfig under OUT/pki: expiry, chain, key'
complete -c mkcerts -n "__fish_mkcerts_needs_command" -f -a "renew" -d 'Re-issue every leaf certificate and the kubeconfigs that embed them, keeping the CAs and keys'
complete -c mkcerts -n "__fish_mkcerts_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mkcerts -n "__fish_mkcerts_using_subcommand check" -l dir -d 'Output directory of an earlier mkcerts run' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand check" -l warn-days -d 'Count a certificate expiring within DAYS as a problem' -r
complete -c mkcerts -n "__fish_mkcerts_using_subcommand check" -s o -l output -d 'Report format' -r -f -a "json\t''
table\t''"
complete -c mkcerts -n "__fish_mkcerts_using_subcommand check" -s h -l help -d 'Print help'
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -s f -l file -d 'Read the document from FILE instead of stdin (\'-\' is stdin)' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l dir -d 'Output directory: the PKI goes to OUT/pki/, files[].src is relative to OUT' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l lock-timeout -d 'Wait at most SECONDS for another run on the same --dir to finish (each run holds an flock on DIR/.hardway.lock from start to end); then exit 3. 0: fail at once' -r
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l key-algorithm -d 'Algorithm of new keys [default: the document\'s pki.algorithm, else ecdsa-p256]' -r -f -a "ecdsa-p256\t''
ecdsa-p384\t''
rsa-2048\t''
rsa-4096\t''"
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l days -d 'Validity of leaf certificates, in days (at most 36500: 100 years)' -r
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l ca-days -d 'Validity of new CA certificates, in days (at most 36500: 100 years)' -r
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l renew-before -d 'Re-issue a leaf that expires within DURATION: a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d' -r
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l extra-san -d 'Another SAN for the kube-apiserver certificate (repeatable, comma-separated)' -r
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l ca-cert -d 'Use this kubernetes CA certificate instead of making one' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l ca-key -d 'The key of --ca-cert (unencrypted PKCS#8 PEM)' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l etcd-ca-cert -d 'Use this etcd CA certificate instead of making one' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l etcd-ca-key -d 'The key of --etcd-ca-cert' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l front-proxy-ca-cert -d 'Use this front-proxy CA certificate instead of making one' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l front-proxy-ca-key -d 'The key of --front-proxy-ca-cert' -r -F
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -l dry-run -d 'Print what would be created, reused or re-issued as JSON; write nothing'
complete -c mkcerts -n "__fish_mkcerts_using_subcommand renew" -s h -l help -d 'Print help'
complete -c mkcerts -n "__fish_mkcerts_using_subcommand help; and not __fish_seen_subcommand_from check renew help" -f -a "check" -d 'Report every certificate and kubeconfig under OUT/pki: expiry, chain, key'
complete -c mkcerts -n "__fish_mkcerts_using_subcommand help; and not __fish_seen_subcommand_from check renew help" -f -a "renew" -d 'Re-issue every leaf certificate and the kubeconfigs that embed them, keeping the CAs and keys'
complete -c mkcerts -n "__fish_mkcerts_using_subcommand help; and not __fish_seen_subcommand_from check renew help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
