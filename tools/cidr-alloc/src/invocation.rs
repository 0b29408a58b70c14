//! The command line as typed values, built from clap's matches once
//! ([`Invocation::from_matches`]); nothing else reads an argument by its id.

use std::path::PathBuf;

use clap::ArgMatches;
use hardway::table::Format;
use hardway::validate;
use ipnet::IpNet;

use crate::cli::options::*;
use crate::error::Error;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `cidr-alloc split RANGE --prefix P --count N`.
    Split {
        range: IpNet,
        prefix: u8,
        count: u64,
    },
    /// `cidr-alloc [-f FILE]`: allocate a document.
    Allocate(AllocateOptions),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AllocateOptions {
    pub file: Option<PathBuf>,
    pub previous: Option<PathBuf>,
    pub avoid: Vec<IpNet>,
    pub avoid_host_routes: bool,
    pub pods_on_controllers: bool,
    pub output: Output,
}

/// `-o`: the document, the table for people, or one of the two pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Format(Format),
    Dot,
    DotRoutes,
}

impl Invocation {
    pub fn from_matches(matches: &ArgMatches) -> Result<Invocation, Error> {
        if let Some(split) = matches.subcommand_matches(SPLIT) {
            let text = split.get_one::<String>(RANGE).expect("required");
            return Ok(Invocation::Split {
                range: validate::network(text).map_err(|why| Error::invalid("RANGE", why))?,
                prefix: *split.get_one::<u8>(PREFIX).expect("required"),
                count: *split.get_one::<u64>(COUNT).expect("required"),
            });
        }
        let avoid = matches
            .get_many::<String>(AVOID)
            .into_iter()
            .flatten()
            .map(|t| validate::network(t).map_err(|why| Error::invalid("--avoid", why)))
            .collect::<Result<Vec<_>, _>>()?;
        let output = match matches.get_one::<String>(OUTPUT).map(String::as_str) {
            Some(DOT) => Output::Dot,
            Some(DOT_ROUTES) => Output::DotRoutes,
            format => Output::Format(format.and_then(Format::parse).unwrap_or_default()),
        };
        Ok(Invocation::Allocate(AllocateOptions {
            file: matches.get_one::<PathBuf>(FILE).cloned(),
            previous: matches.get_one::<PathBuf>(PREVIOUS).cloned(),
            avoid,
            avoid_host_routes: matches.get_flag(AVOID_HOST_ROUTES),
            pods_on_controllers: matches.get_flag(PODS_ON_CONTROLLERS),
            output,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Invocation, Error> {
        let matches = crate::cli::command()
            .try_get_matches_from(std::iter::once("cidr-alloc").chain(args.iter().copied()))
            .unwrap();
        Invocation::from_matches(&matches)
    }

    #[test]
    fn flags_become_typed_options() {
        let Invocation::Allocate(options) = parse(&[
            "-f",
            "in.json",
            "--avoid",
            "10.9.0.0/16",
            "--pods-on-controllers",
            "-o",
            "dot-routes",
        ])
        .unwrap() else {
            panic!("not an allocation");
        };
        assert_eq!(options.file, Some(PathBuf::from("in.json")));
        assert_eq!(options.avoid, ["10.9.0.0/16".parse::<IpNet>().unwrap()]);
        assert!(options.pods_on_controllers && !options.avoid_host_routes);
        assert_eq!(options.output, Output::DotRoutes);
        let Invocation::Allocate(plain) = parse(&[]).unwrap() else {
            panic!("not an allocation");
        };
        assert_eq!(plain.output, Output::Format(Format::Json));
    }

    #[test]
    fn split_and_a_bad_avoid() {
        assert_eq!(
            parse(&["split", "10.200.0.0/16", "--prefix", "24", "--count", "3"]).unwrap(),
            Invocation::Split {
                range: "10.200.0.0/16".parse().unwrap(),
                prefix: 24,
                count: 3
            }
        );
        let err = parse(&["--avoid", "10.9.0.1/16"]).unwrap_err().to_string();
        assert!(err.starts_with("--avoid: "), "{err}");
    }
}
