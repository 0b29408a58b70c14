fn main() -> std::process::ExitCode {
    hardway::tool::run(etcd_check::cli::command(), etcd_check::run)
}
