//! Man pages and shell completions, generated from the same clap `Command` each tool's main uses,
//! so the pages cannot drift from the flags. `make man` writes them to man/; the test in
//! tests/man_is_fresh.rs fails when the committed pages are stale.

use std::path::{Path, PathBuf};

use clap::Command;
use clap_complete::Shell;

/// Every tool's command line.
pub fn tools() -> Vec<Command> {
    vec![
        mkcluster::cli::command(),
        cidr_alloc::cli::command(),
        mkcerts::cli::command(),
        mkunits::cli::command(),
        mkvm::cli::command(),
        node_push::cli::command(),
        route_sync::cli::command(),
        etcd_check::cli::command(),
        etcd_sync::cli::command(),
        etcd_snapshot::cli::command(),
    ]
}

/// Writes one page per command and subcommand, and bash, zsh and fish completions, under `dir`.
pub fn generate(dir: &Path) -> std::io::Result<()> {
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for command in tools() {
        write_pages(&command, dir, &[])?;
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let name = command.get_name().to_string();
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), &name, &mut text);
            let file = match shell {
                Shell::Bash => format!("{name}.bash"),
                Shell::Zsh => format!("_{name}"),
                _ => format!("{name}.fish"),
            };
            std::fs::write(completions.join(file), text)?;
        }
    }
    Ok(())
}

/// One page for the command and one for each subcommand (`mkcerts-check.1`), as git does.
fn write_pages(command: &Command, dir: &Path, parents: &[&str]) -> std::io::Result<()> {
    let mut names: Vec<&str> = parents.to_vec();
    names.push(command.get_name());
    let page_name = names.join("-");
    let command = command.clone().name(page_name.clone());
    let mut text = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut text)?;
    let path: PathBuf = dir.join(format!("{page_name}.1"));
    std::fs::write(path, text)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        write_pages(sub, dir, &names)?;
    }
    Ok(())
}
