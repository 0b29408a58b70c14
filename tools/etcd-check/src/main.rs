fn main() -> std::process::ExitCode {
    let matches = etcd_check::cli::command().get_matches();
    hardway::tool::main("etcd-check", || etcd_check::run(&matches))
}
