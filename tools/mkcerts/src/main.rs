fn main() -> std::process::ExitCode {
    let matches = mkcerts::cli::command().get_matches();
    hardway::tool::main("mkcerts", || mkcerts::run(&matches))
}
