//! The one duration grammar of every flag that takes a DURATION: a number and its unit, `500ms`,
//! `5s`, `1.5m`, `72h`, `30d`.
//!
//! A bare number is refused. Before this module a bare `30` meant 30 days to mkcerts'
//! `--renew-before` and a bare `5` meant 5 seconds to etcd-check's `--timeout`; whichever unit
//! became the rule, one of those spellings would have silently changed meaning by a factor of
//! 86,400. Refusing it costs one character and says which spelling kept the old meaning.

use std::time::Duration;

use crate::error::quote;

/// What `--help` says about every DURATION value.
pub const GRAMMAR: &str = "a number and a unit: ms, s, m, h or d, as in 500ms, 5s, 1.5m, 72h, 30d";

/// A unit of the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl Unit {
    const ALL: [Unit; 5] = [
        Unit::Millis,
        Unit::Seconds,
        Unit::Minutes,
        Unit::Hours,
        Unit::Days,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Seconds => "s",
            Unit::Minutes => "m",
            Unit::Hours => "h",
            Unit::Days => "d",
        }
    }

    fn seconds(self) -> f64 {
        match self {
            Unit::Millis => 0.001,
            Unit::Seconds => 1.0,
            Unit::Minutes => 60.0,
            Unit::Hours => 3_600.0,
            Unit::Days => 86_400.0,
        }
    }
}

/// Parses a DURATION. `bare_meant` is the unit a bare number meant to this flag before the
/// grammar was one: a bare number is refused with the spelling that keeps that meaning.
pub fn parse(text: &str, bare_meant: Unit) -> Result<Duration, String> {
    let text = text.trim();
    let quoted = quote(text);
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{quoted} is not a duration: {GRAMMAR}"))?;
    if suffix.is_empty() {
        return Err(format!(
            "{quoted} has no unit: write {number}{}; a duration is {GRAMMAR}",
            bare_meant.suffix()
        ));
    }
    let unit = Unit::ALL
        .into_iter()
        .find(|u| u.suffix() == suffix)
        .ok_or_else(|| {
            format!(
                "{quoted}: unknown unit {} (use ms, s, m, h or d)",
                quote(suffix)
            )
        })?;
    Duration::try_from_secs_f64(value * unit.seconds()).map_err(|_| format!("{quoted} is too long"))
}

/// Parses a timeout: a DURATION above zero and below a day (a longer wait is a hung run).
pub fn timeout(text: &str, bare_meant: Unit) -> Result<Duration, String> {
    let duration = parse(text, bare_meant)?;
    if duration.is_zero() || duration >= Duration::from_secs(86_400) {
        return Err(format!(
            "{} must be above zero and below a day",
            quote(text.trim())
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_fractions() {
        let s = |text| parse(text, Unit::Seconds).unwrap();
        assert_eq!(s("250ms"), Duration::from_millis(250));
        assert_eq!(s("5s"), Duration::from_secs(5));
        assert_eq!(s("1.5s"), Duration::from_millis(1500));
        assert_eq!(s("1m"), Duration::from_secs(60));
        assert_eq!(s("72h"), Duration::from_secs(72 * 3600));
        assert_eq!(s("30d"), Duration::from_secs(30 * 86_400));
        assert_eq!(s(" 0d "), Duration::ZERO);
    }

    #[test]
    fn a_bare_number_is_refused_with_the_spelling_that_keeps_its_old_meaning() {
        assert_eq!(
            parse("30", Unit::Days).unwrap_err(),
            format!("\"30\" has no unit: write 30d; a duration is {GRAMMAR}")
        );
        assert!(parse("5", Unit::Seconds).unwrap_err().contains("write 5s"));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "", "s", "-1s", "5x", "5 s", "1h30m", "1e3s", "5sec", "1..2s",
        ] {
            assert!(parse(bad, Unit::Seconds).is_err(), "{bad:?} accepted");
        }
        let endless = format!("{}d", "9".repeat(400));
        assert_eq!(
            parse(&endless, Unit::Days).unwrap_err(),
            format!("{} is too long", quote(&endless))
        );
    }

    #[test]
    fn a_timeout_is_above_zero_and_below_a_day() {
        assert_eq!(
            timeout("500ms", Unit::Seconds).unwrap(),
            Duration::from_millis(500)
        );
        for bad in ["0s", "0ms", "24h", "1d"] {
            assert!(timeout(bad, Unit::Seconds).is_err(), "{bad} accepted");
        }
    }
}
