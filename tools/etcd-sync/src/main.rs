fn main() -> std::process::ExitCode {
    hardway::tool::run(etcd_sync::cli::command(), etcd_sync::run)
}
