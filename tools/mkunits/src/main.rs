fn main() -> std::process::ExitCode {
    hardway::tool::run(mkunits::cli::command(), mkunits::run)
}
