//! The command line as typed values, built from clap's matches once (`Invocation::from_matches`);
//! the rest of mkcerts never reads an argument by its id.

use std::path::PathBuf;

use clap::ArgMatches;
use hardway::duration::Unit;
use hardway::table::Format;
use time::{Duration, OffsetDateTime};

use crate::algo::KeyAlgorithm;
use crate::cli::options::*;
use crate::error::MkcertsError;
use crate::{pki, plan};

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Invocation {
    /// `mkcerts` (make) or `mkcerts renew` (`renew` set).
    Make(Box<MakeOptions>),
    /// `mkcerts check`.
    Check(CheckOptions),
}

/// The options of `mkcerts` and `mkcerts renew`.
#[derive(Debug, Clone)]
pub struct MakeOptions {
    pub file: Option<PathBuf>,
    pub dir: PathBuf,
    pub lock_timeout: std::time::Duration,
    /// `--key-algorithm`; `None` keeps the document's.
    pub algorithm: Option<KeyAlgorithm>,
    pub days: i64,
    pub ca_days: i64,
    pub renew_before: Duration,
    pub extra_sans: Vec<String>,
    /// `--ca-cert/--ca-key` and the etcd and front-proxy pairs, indexed by `pki::Ca::index`.
    pub external_ca: [Option<(PathBuf, PathBuf)>; 3],
    pub dry_run: bool,
    /// `mkcerts renew`: re-issue every leaf.
    pub renew: bool,
}

/// The options of `mkcerts check`.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub dir: PathBuf,
    pub warn_days: u32,
    pub format: Format,
}

impl Invocation {
    pub fn from_matches(matches: &ArgMatches) -> Result<Invocation, MkcertsError> {
        Ok(match matches.subcommand() {
            Some((CHECK, sub)) => Invocation::Check(CheckOptions::from_matches(sub)),
            Some((RENEW, sub)) => Invocation::Make(Box::new(MakeOptions::from_matches(sub, true)?)),
            _ => Invocation::Make(Box::new(MakeOptions::from_matches(matches, false)?)),
        })
    }
}

impl CheckOptions {
    fn from_matches(m: &ArgMatches) -> CheckOptions {
        CheckOptions {
            dir: m.get_one::<PathBuf>(DIR).expect("defaulted").clone(),
            warn_days: *m.get_one::<u32>(WARN_DAYS).expect("defaulted"),
            format: Format::parse(m.get_one::<String>(OUTPUT).expect("defaulted"))
                .expect("clap checked the format"),
        }
    }
}

impl MakeOptions {
    fn from_matches(m: &ArgMatches, renew: bool) -> Result<MakeOptions, MkcertsError> {
        let days = i64::from(*m.get_one::<u32>(DAYS).expect("defaulted"));
        let pair = |cert: &str, key: &str| {
            m.get_one::<PathBuf>(cert)
                .cloned()
                .zip(m.get_one::<PathBuf>(key).cloned())
        };
        Ok(MakeOptions {
            file: m.get_one::<PathBuf>(FILE).cloned(),
            dir: m.get_one::<PathBuf>(DIR).expect("required").clone(),
            lock_timeout: hardway::fsutil::lock_timeout(m),
            algorithm: m
                .get_one::<String>(KEY_ALGORITHM)
                .map(|name| KeyAlgorithm::parse(name).expect("clap checked the name")),
            days,
            ca_days: i64::from(*m.get_one::<u32>(CA_DAYS).expect("defaulted")),
            renew_before: renew_before(
                m.get_one::<String>(RENEW_BEFORE).expect("defaulted"),
                days,
            )?,
            extra_sans: m
                .get_many::<String>(EXTRA_SAN)
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            external_ca: [
                pair(CA_CERT, CA_KEY),
                pair(ETCD_CA_CERT, ETCD_CA_KEY),
                pair(FRONT_PROXY_CA_CERT, FRONT_PROXY_CA_KEY),
            ],
            dry_run: m.get_flag(DRY_RUN),
            renew,
        })
    }

    /// The options `pki::make` takes: the key algorithm falls back on the document's.
    pub fn pki(&self, doc: &hardway::Document) -> Result<pki::Options, MkcertsError> {
        Ok(pki::Options {
            dir: self.dir.clone(),
            algorithm: match self.algorithm {
                Some(algorithm) => algorithm,
                None => document_algorithm(doc)?,
            },
            ca_days: self.ca_days,
            days: self.days,
            renew_before: self.renew_before,
            external_ca: self.external_ca.clone(),
            renew: self.renew,
            plan: plan::PlanOptions {
                extra_sans: self.extra_sans.clone(),
            },
            now: OffsetDateTime::now_utc(),
        })
    }
}

/// `--renew-before`, shorter than the validity: a window as long as `--days` would make every
/// leaf "near expiry" the moment it is made, and each run would re-issue all of them. A bare
/// number meant days here.
fn renew_before(text: &str, days: i64) -> Result<Duration, MkcertsError> {
    let bad = |message: String| MkcertsError::bad(format!("--{RENEW_BEFORE}"), message);
    let window = hardway::duration::parse(text, Unit::Days).map_err(bad)?;
    let window = Duration::try_from(window).map_err(|_| bad(format!("{text} is too long")))?;
    if window >= Duration::days(days) {
        return Err(bad(format!(
            "{text} is not shorter than --days {days}: every run would re-issue every leaf; \
             give a shorter --renew-before or a longer --days"
        )));
    }
    Ok(window)
}

/// The document's `pki.algorithm`, else ecdsa-p256.
fn document_algorithm(doc: &hardway::Document) -> Result<KeyAlgorithm, MkcertsError> {
    match doc.pki.as_ref().map(|p| p.algorithm.as_str()) {
        Some(name) => KeyAlgorithm::parse(name).ok_or_else(|| {
            MkcertsError::bad(
                "pki.algorithm",
                format!(
                    "{name:?} is not a key algorithm: use one of {}",
                    KeyAlgorithm::NAMES.join(", ")
                ),
            )
        }),
        None => Ok(KeyAlgorithm::EcdsaP256),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, MkcertsError> {
        let matches = crate::cli::command()
            .try_get_matches_from(std::iter::once("mkcerts").chain(args.iter().copied()))
            .unwrap();
        Invocation::from_matches(&matches)
    }

    #[test]
    fn make_options_are_typed_once() {
        let Invocation::Make(make) = parse(&[
            "--dir",
            "out",
            "--renew-before",
            "72h",
            "--extra-san",
            "a,b",
            "--ca-cert",
            "c.pem",
            "--ca-key",
            "k.pem",
        ])
        .unwrap() else {
            panic!("not a make");
        };
        assert_eq!(make.renew_before, Duration::hours(72));
        assert_eq!(make.extra_sans, ["a", "b"]);
        assert_eq!(
            make.external_ca[0],
            Some((PathBuf::from("c.pem"), PathBuf::from("k.pem")))
        );
        assert!(!make.renew && !make.dry_run);
        assert_eq!((make.days, make.ca_days), (365, 3650));
    }

    #[test]
    fn a_bare_renew_before_is_refused_with_its_days_spelling() {
        let err = parse(&["--dir", "out", "--renew-before", "30"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--renew-before: \"30\" has no unit: write 30d; a duration is {}",
                hardway::duration::GRAMMAR
            )
        );
    }

    #[test]
    fn check_and_renew_are_their_own_invocations() {
        let Invocation::Check(check) = parse(&["check", "-o", "table"]).unwrap() else {
            panic!("not a check");
        };
        assert_eq!((check.warn_days, check.format), (30, Format::Table));
        let Invocation::Make(renew) = parse(&["renew", "--dir", "o"]).unwrap() else {
            panic!("not a renew");
        };
        assert!(renew.renew);
    }
}
