fn main() -> std::process::ExitCode {
    hardway::tool::run(route_sync::cli::command(), route_sync::run)
}
