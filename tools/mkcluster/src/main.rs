fn main() -> std::process::ExitCode {
    let matches = match mkcluster::cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) if e.use_stderr() => return hardway::tool::usage("mkcluster", &e.to_string()),
        Err(e) => e.exit(),
    };
    hardway::tool::main("mkcluster", || mkcluster::run(&matches))
}
