//! What every tool's `main` does: run, print the one error line, exit with its code.

use std::process::ExitCode;

use crate::error::{Exit, Failure};

/// Runs a tool's body and turns its result into the process exit code.
///
/// Errors print as one line, `tool: error: message`, however many lines the message had, so a
/// script can `grep` or log them. A closed stdout (`tool | head`) is not an error: it is known by
/// its type ([`Failure::is_closed_stdout`]), never by the message's text.
pub fn main<E: Failure>(tool: &str, run: impl FnOnce() -> Result<Exit, E>) -> ExitCode {
    match run() {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) if error.is_closed_stdout() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{tool}: error: {}", printable(&error.to_string()));
            ExitCode::from(error.exit().code())
        }
    }
}

/// The most an error line carries: a message that quotes input through [`crate::error::quote`]
/// stays far below it; this bounds the rest (an OS or library message that echoes a value).
const LINE_MAX: usize = 2000;

/// What an error message becomes before it is printed: one line, no URL password or user name
/// (`qemu+ssh://u:secret@h` prints as `qemu+ssh://…@h`), at most [`LINE_MAX`] characters.
pub fn printable(message: &str) -> String {
    let line = crate::uri::redact_userinfo(&one_line(message));
    match line.char_indices().nth(LINE_MAX) {
        None => line,
        Some((cut, _)) => format!("{}…", &line[..cut]),
    }
}

/// A tool's whole `main`: parse the command line (usage errors as one line, exit 2; `--help` and
/// `--version` to stdout, exit 0), run the tool, print its error once, exit with its code.
pub fn run<E: Failure>(
    command: clap::Command,
    run: impl FnOnce(&clap::ArgMatches) -> Result<Exit, E>,
) -> ExitCode {
    let tool = command.get_name().to_string();
    let matches = match command.try_get_matches() {
        Ok(matches) => matches,
        Err(e) if e.use_stderr() => return usage(&tool, &e.to_string()),
        Err(e) => e.exit(),
    };
    main(&tool, || run(&matches))
}

/// Prints a command-line parser's usage error (clap's rendered text) as one `tool: error:` line
/// and returns exit code 2, so bad flags look like every other error.
pub fn usage(tool: &str, rendered: &str) -> ExitCode {
    eprintln!("{}", printable(&usage_message(tool, rendered)));
    ExitCode::from(Exit::Usage.code())
}

/// The one line [`usage`] prints.
fn usage_message(tool: &str, rendered: &str) -> String {
    // clap renders "error: …", optional tips, then a usage block (one line per form) and a
    // "For more information" line: keep what comes before the usage block.
    let message: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    // A line ending in ':' introduces the next one ("not provided:" then "--dir <OUT>").
    let message = message
        .iter()
        .enumerate()
        .fold(String::new(), |mut joined, (i, line)| {
            if i > 0 {
                joined.push_str(if message[i - 1].ends_with(':') {
                    " "
                } else {
                    "; "
                });
            }
            joined.push_str(line);
            joined
        });
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    format!("{tool}: error: {message} (see {tool} --help)")
}

/// Folds a multi-line message into one line.
pub fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// One plain progress or log line on stderr, prefixed with the tool's name.
pub fn log(tool: &str, message: impl std::fmt::Display) {
    eprintln!("{tool}: {message}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn usage_keeps_the_error_and_drops_every_usage_line() {
        let rendered = "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\nUsage: mkcerts [OPTIONS] --dir <OUT>\n       mkcerts <COMMAND>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::usage_message("mkcerts", rendered),
            "mkcerts: error: unexpected argument '--bogus' found; tip: to pass '--bogus' as a value, use '-- --bogus' (see mkcerts --help)"
        );
    }

    #[test]
    fn usage_joins_a_list_to_the_line_that_introduces_it() {
        let rendered = "error: the following required arguments were not provided:\n  --dir <OUT>\n\nUsage: mkcerts --dir <OUT>\n";
        assert_eq!(
            super::usage_message("mkcerts", rendered),
            "mkcerts: error: the following required arguments were not provided: --dir <OUT> (see mkcerts --help)"
        );
    }

    #[test]
    fn printable_hides_userinfo_and_cuts_long_lines() {
        let line = super::printable("cannot open qemu+ssh://u:secret@h/system: refused");
        assert_eq!(line, "cannot open qemu+ssh://…@h/system: refused");
        let line = super::printable(&"x".repeat(10_000_000));
        assert_eq!(line.chars().count(), super::LINE_MAX + 1);
        assert!(line.ends_with('…'));
    }

    #[test]
    fn only_a_closed_stdout_ends_quietly() {
        use crate::error::{Error, Failure};
        use std::io;
        let epipe = || io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(Error::stdout(epipe()).is_closed_stdout());
        // An EPIPE elsewhere (a socket, an SSH channel) and a message that merely ends like one
        // are errors like any other.
        assert!(!Error::io("ssh channel", epipe()).is_closed_stdout());
        let lookalike = Error::invalid("x", "Broken pipe (os error 32)");
        assert!(!lookalike.is_closed_stdout());
        let code = super::main("t", || Err::<crate::Exit, _>(lookalike));
        assert_eq!(
            format!("{code:?}"),
            format!("{:?}", std::process::ExitCode::from(2))
        );
    }

    #[test]
    fn one_line_folds_lines() {
        assert_eq!(super::one_line("a\n  b\n\nc"), "a; b; c");
    }
}
