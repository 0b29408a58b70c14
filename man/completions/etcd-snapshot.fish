# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_etcd_snapshot_global_optspecs
    string join \n h/help V/version
end

function __fish_etcd_snapshot_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_etcd_snapshot_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_etcd_snapshot_using_subcommand
    set -l cmd (__fish_etcd_snapshot_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c etcd-snapshot -n "__fish_etcd_snapshot_needs_command" -s h -l help -d 'Print help'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_needs_command" -s V -l version -d 'Print version'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_needs_command" -f -a "save" -d 'Stream a snapshot into a verified file under --dir'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_needs_command" -f -a "restore" -d 'Add to every etcd node the snapshot and a oneshot unit that restores it'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand save" -s f -l file -d 'The cluster document; \'-\' or none reads stdin' -r -F
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand save" -l dir -d 'The output directory: the PKI paths are relative to it, snapshots go under it' -r -F
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand save" -l timeout -d 'Bound on connecting to each member; DURATION is a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d' -r
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand save" -l lock-timeout -d 'Wait at most SECONDS for another run on the same --dir to finish (each run holds an flock on DIR/.hardway.lock from start to end); then exit 3. 0: fail at once' -r
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand save" -s o -l output -d 'Report format' -r -f -a "json\t''
table\t''"
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand save" -s h -l help -d 'Print help'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -s f -l file -d 'The cluster document; \'-\' or none reads stdin' -r -F
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -l dir -d 'The output directory: the PKI paths are relative to it, snapshots go under it' -r -F
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -l timeout -d 'Bound on connecting to each member; DURATION is a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d' -r
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -l lock-timeout -d 'Wait at most SECONDS for another run on the same --dir to finish (each run holds an flock on DIR/.hardway.lock from start to end); then exit 3. 0: fail at once' -r
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -l snapshot -d 'A snapshot etcd-snapshot save (or etcdctl snapshot save) wrote' -r -F
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -l force -d 'Restore even though a member answers (it will lose what was written since)'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand restore" -s h -l help -d 'Print help'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand help; and not __fish_seen_subcommand_from save restore help" -f -a "save" -d 'Stream a snapshot into a verified file under --dir'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand help; and not __fish_seen_subcommand_from save restore help" -f -a "restore" -d 'Add to every etcd node the snapshot and a oneshot unit that restores it'
complete -c etcd-snapshot -n "__fish_etcd_snapshot_using_subcommand help; and not __fish_seen_subcommand_from save restore help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
