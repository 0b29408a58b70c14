fn main() -> std::process::ExitCode {
    hardway::tool::run(cidr_alloc::cli::command(), cidr_alloc::run)
}
