//! Reading inputs (a file or stdin) and writing to stdout.

use std::io::{Read, Write};
use std::path::Path;

use crate::error::Error;

/// True when `path` means stdin: absent or `-`.
pub fn is_stdin(path: Option<&Path>) -> bool {
    path.is_none_or(|p| p.as_os_str() == "-")
}

/// Reads a whole input; returns a name for it (the path, or `<stdin>`) and its text.
pub fn read_input(path: Option<&Path>) -> Result<(String, String), Error> {
    let mut text = String::new();
    if is_stdin(path) {
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::input("<stdin>", e))?;
        return Ok(("<stdin>".into(), text));
    }
    let path = path.expect("not stdin");
    let name = path.display().to_string();
    text = std::fs::read_to_string(path).map_err(|e| Error::input(&name, e))?;
    Ok((name, text))
}

/// Writes text to stdout and flushes it.
pub fn print(text: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(Error::stdout)
}

/// Prints a value as pretty JSON with a final newline.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    print(&crate::json::to_string_pretty(value))
}
