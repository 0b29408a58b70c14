complete -c etcd-check -s f -l file -d 'The cluster document; \'-\' or none reads stdin (unless --endpoints is given)' -r -F
complete -c etcd-check -l dir -d 'The output directory the document\'s certificate paths are relative to' -r -F
complete -c etcd-check -l endpoints -d 'Client URLs, comma-separated (https://HOST:PORT; a bare HOST:PORT is https with --cacert, as etcdctl takes it); no document is read' -r
complete -c etcd-check -l cacert -d 'The CA that signed the members\' server certificates (PEM)' -r -F
complete -c etcd-check -l cert -d 'Client certificate (PEM)' -r -F
complete -c etcd-check -l key -d 'Client certificate\'s private key (PEM)' -r -F
complete -c etcd-check -l timeout -d 'Bound on the whole check; DURATION is a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d' -r
complete -c etcd-check -l connect-timeout -d 'Bound on each member\'s TCP connect and TLS handshake (at most --timeout), as etcdctl\'s --dial-timeout; a DURATION as --timeout takes' -r
complete -c etcd-check -l max-lag -d 'Largest raft index lag (behind the most advanced member, or applied behind committed) still healthy' -r
complete -c etcd-check -l warn-days -d 'A server certificate expiring within this many days makes the cluster degraded' -r
complete -c etcd-check -s o -l output -d 'Report format' -r -f -a "json\t''
table\t''"
complete -c etcd-check -l watch -d 'Check again every SECONDS and print what changed, until interrupted' -r
complete -c etcd-check -s h -l help -d 'Print help (see more with \'--help\')'
complete -c etcd-check -s V -l version -d 'Print version'
