//! `cargo run -p xtask -- man DIR`: writes the man pages and completions (see the library).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [verb, dir] if verb == "man" => match xtask::generate(Path::new(dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xtask: error: {dir}: {e}");
                ExitCode::from(3)
            }
        },
        _ => {
            eprintln!("xtask: error: usage: xtask man DIR");
            ExitCode::from(2)
        }
    }
}
