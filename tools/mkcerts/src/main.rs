fn main() -> std::process::ExitCode {
    hardway::tool::run(mkcerts::cli::command(), mkcerts::run)
}
