fn main() -> std::process::ExitCode {
    hardway::tool::run(mkcluster::cli::command(), mkcluster::run)
}
