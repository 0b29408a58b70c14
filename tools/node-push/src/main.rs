fn main() -> std::process::ExitCode {
    hardway::tool::run(node_push::cli::command(), node_push::run)
}
