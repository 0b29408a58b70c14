fn main() -> std::process::ExitCode {
    let matches = match cidr_alloc::cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) if e.use_stderr() => return hardway::tool::usage("cidr-alloc", &e.to_string()),
        Err(e) => e.exit(),
    };
    hardway::tool::main("cidr-alloc", || cidr_alloc::run(&matches))
}
