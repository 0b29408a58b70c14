fn main() -> std::process::ExitCode {
    hardway::tool::run(mkvm::cli::command(), mkvm::run)
}
