fn main() -> std::process::ExitCode {
    let matches = mkvm::cli::command().get_matches();
    hardway::tool::main("mkvm", || mkvm::run(&matches))
}
