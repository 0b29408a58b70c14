complete -c route-sync -s f -l file -d 'Read the cluster document from FILE instead of stdin (\'-\' is stdin)' -r -F
complete -c route-sync -l node -d 'Run on node NAME: route the other nodes\' pod CIDRs, never its own' -r
complete -c route-sync -l hypervisor -d 'With --host, on a cluster across several hypervisors: this machine is hypervisor NAME (its `hypervisors[].name`)' -r
complete -c route-sync -l proto -d 'Protocol number that marks the routes route-sync owns: 5-255, or a name from /etc/iproute2/rt_protos{,.d/*.conf}; \'hardway\' is 200 (0xc8), used by no common routing daemon. Add \'200 hardway\' to /etc/iproute2/rt_protos.d/hardway.conf for `ip route` to show the name' -r
complete -c route-sync -l table -d 'Routing table of the routes: 1-4294967295, \'main\' (254) or \'default\' (253). A table other than main needs an `ip rule` to be used' -r
complete -c route-sync -s o -l output -d 'Report format: json, or table for people; with --dry-run also dot: the routes of this viewpoint as a Graphviz picture (`| dot -Tsvg`), drawn from the document alone (the kernel is not read)' -r -f -a "json\t''
table\t''
dot\t''"
complete -c route-sync -l watch -d 'Keep running: a pass as soon as -f FILE is written or renamed over (inotify), 200 ms after another process changes links, addresses, routes or nexthops, and every SECONDS. The kernel\'s tables are kept between passes and dumped again only after such a change or every SECONDS, and a FILE that differs from the last good one inside one node is read as an edit of that node alone, so a node\'s new address is a parse of one node and one nexthop replace. Reports print when a pass changed something; errors are logged and retried; a FILE that does not parse keeps the last good one. Stops on SIGINT or SIGTERM' -r
complete -c route-sync -l nexthop-ids -d 'Ids of the nexthop objects route-sync makes, one per node and family, and owns (with its --proto); default 0xc8000000-0xc8ffffff, clear of the kernel\'s own ids (from 1 up) and FRR\'s (below 250000000 and from 0xf0000000). Give each route-sync on one machine its own range' -r
complete -c route-sync -l host -d 'Run on the hypervisor: route every node\'s pod CIDRs via the node'
complete -c route-sync -l dry-run -d 'Print the plan and change nothing'
complete -c route-sync -l check -d 'Change nothing; exit 1 when anything would change or conflicts'
complete -c route-sync -l no-nexthops -d 'Plain routes via the gateway instead of routes naming a nexthop object (what a kernel before 5.3 gets anyway); routes of the other form are replaced in place and route-sync\'s nexthops removed'
complete -c route-sync -s h -l help -d 'Print help (see more with \'--help\')'
complete -c route-sync -s V -l version -d 'Print version'
