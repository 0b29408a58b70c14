_mkcluster() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="mkcluster"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        mkcluster)
            opts="-h -V --format --name --domain --cluster-domain --kubernetes-version --allow-unsupported-version --container-runtime --kube-proxy-mode --node-network --pod-network --service-network --pod-prefix --pod-routing --api-vip --controller-vip --api-port --hypervisor --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --format)
                    COMPREPLY=($(compgen -W "csv machines" -- "${cur}"))
                    return 0
                    ;;
                --name)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --domain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --cluster-domain)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --kubernetes-version)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --container-runtime)
                    COMPREPLY=($(compgen -W "containerd-2 containerd-1 cri-o" -- "${cur}"))
                    return 0
                    ;;
                --kube-proxy-mode)
                    COMPREPLY=($(compgen -W "iptables nftables" -- "${cur}"))
                    return 0
                    ;;
                --node-network)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --pod-network)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --service-network)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --pod-prefix)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --pod-routing)
                    COMPREPLY=($(compgen -W "routes flannel" -- "${cur}"))
                    return 0
                    ;;
                --api-vip)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --controller-vip)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --api-port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hypervisor)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _mkcluster -o nosort -o bashdefault -o default mkcluster
else
    complete -F _mkcluster -o bashdefault -o default mkcluster
fi
