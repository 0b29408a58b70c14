complete -c etcd-sync -s f -l file -d 'The cluster document; \'-\' or none reads stdin' -r -F
complete -c etcd-sync -l dir -d 'The output directory the document\'s certificate paths are relative to' -r -F
complete -c etcd-sync -l previous -d 'An earlier output: its nodes[].etcd records are kept for the same nodes (same name and address) when the input has none, as after rebuilding the document from the inventory; a missing FILE counts as none' -r -F
complete -c etcd-sync -l timeout -d 'Bound on each call to a member; DURATION is a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d' -r
complete -c etcd-sync -l retry-timeout -d 'How long to retry a change etcd refuses for now: a learner not caught up yet, or (etcd 3.4\'s strict reconfiguration check) a leader not connected to every voter for 5 s; a DURATION as --timeout takes' -r
complete -c etcd-sync -s o -l output -d 'Format of the plan (--dry-run) or report (--check)' -r -f -a "json\t''
table\t''"
complete -c etcd-sync -l dry-run -d 'Print the plan (JSON, or -o table) and change nothing'
complete -c etcd-sync -l check -d 'Print the report and exit 1 when the members do not match the document'
complete -c etcd-sync -s h -l help -d 'Print help (see more with \'--help\')'
complete -c etcd-sync -s V -l version -d 'Print version'
