complete -c node-push -s f -l file -d 'Read the document from FILE instead of stdin' -r -F
complete -c node-push -l dir -d 'Output directory of mkcerts and mkunits: files[].src is relative to it' -r -F
complete -c node-push -s u -l user -d 'Log in as USER (owners can only be set as root)' -r
complete -c node-push -s i -l identity -d 'Private key to log in with (no passphrase); default: the SSH agent, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa' -r -F
complete -c node-push -l known-hosts -d 'known_hosts file to check host keys against [default: ~/.ssh/known_hosts]' -r -F
complete -c node-push -s p -l port -d 'SSH port of every node' -r
complete -c node-push -l address-from -d 'Where a node\'s address comes from: its first IP, or vm.address (mkvm)' -r -f -a "ip\t''
vm\t''"
complete -c node-push -l address -d 'Connect to NODE at HOST[:PORT] instead (repeatable)' -r
complete -c node-push -s j -l parallel -d 'Push to at most N nodes at once' -r
complete -c node-push -l timeout -d 'Give up on a node after SECONDS (connect, transfer and commands together; counted again when it reconnects at its wave)' -r
complete -c node-push -l between -d 'Health gate run with `sh -c` after each wave that restarted running services, until it exits 0 (its output goes to stderr)' -r
complete -c node-push -l gate-timeout -d 'Give up on the gate after SECONDS of retries: the rollout stops, exit 3' -r
complete -c node-push -l batch -d 'Restart at most N workers per wave (control-plane nodes go one at a time)' -r
complete -c node-push -l only -d 'Push to this node only (repeatable)' -r
complete -c node-push -l roles -d 'Push to nodes with one of these roles (etcd, controller, worker, lb)' -r
complete -c node-push -s o -l output -d 'Report format' -r -f -a "json\t''
table\t''"
complete -c node-push -l report -d 'Write the report to FILE instead of stderr; `-` prints it on stdout instead of the document' -r -F
complete -c node-push -l accept-new -d 'Record the key of a host not yet in known_hosts (a changed key is still refused)'
complete -c node-push -l no-start -d 'Install files only: no daemon-reload, enable, start or restart'
complete -c node-push -l dry-run -d 'Connect and compare hashes; report what would change, change nothing'
complete -c node-push -s h -l help -d 'Print help (see more with \'--help\')'
complete -c node-push -s V -l version -d 'Print version'
