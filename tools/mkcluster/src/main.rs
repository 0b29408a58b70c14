fn main() -> std::process::ExitCode {
    let matches = mkcluster::cli::command().get_matches();
    hardway::tool::main("mkcluster", || mkcluster::run(&matches))
}
