fn main() -> std::process::ExitCode {
    let matches = cidr_alloc::cli::command().get_matches();
    hardway::tool::main("cidr-alloc", || cidr_alloc::run(&matches))
}
