fn main() -> std::process::ExitCode {
    let matches = route_sync::cli::command().get_matches();
    hardway::tool::main("route-sync", || route_sync::run(&matches))
}
