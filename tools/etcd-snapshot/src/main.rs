fn main() -> std::process::ExitCode {
    hardway::tool::run(etcd_snapshot::cli::command(), etcd_snapshot::run)
}
