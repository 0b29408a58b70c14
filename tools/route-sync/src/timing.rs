//! `ROUTE_SYNC_TIMING=1`: how long each step of a pass took, one stderr line per step, for
//! `make bench` and for finding where a slow run spends its time. Off, a span costs one load.

use std::sync::OnceLock;
use std::time::Instant;

/// The environment variable that turns the lines on.
pub const VAR: &str = "ROUTE_SYNC_TIMING";

fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os(VAR).is_some_and(|v| !v.is_empty() && v != "0"))
}

/// A step being timed: logs `route-sync: timing: NAME MS` when dropped.
pub struct Span {
    name: &'static str,
    start: Option<Instant>,
}

/// Starts timing the step `name`.
pub fn span(name: &'static str) -> Span {
    Span {
        name,
        start: enabled().then(Instant::now),
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            eprintln!("{}: timing: {} {ms:.2} ms", crate::TOOL, self.name);
        }
    }
}
