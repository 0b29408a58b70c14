fn main() -> std::process::ExitCode {
    let matches = mkunits::cli::command().get_matches();
    hardway::tool::main("mkunits", || mkunits::run(&matches))
}
