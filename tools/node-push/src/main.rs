fn main() -> std::process::ExitCode {
    let matches = node_push::cli::command().get_matches();
    hardway::tool::main("node-push", || node_push::run(&matches))
}
