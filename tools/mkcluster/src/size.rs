//! Memory and disk sizes as people write them: `512M`, `1.5G`, `4GiB`, `1T`, or a bare number in
//! the column's own unit (MiB for memory, GiB for disk). Units are binary (1G = 1024M), as libvirt
//! and qemu mean them.

/// KiB in each unit a size may be written in.
const KIB: u128 = 1;
const MIB: u128 = 1024;
const GIB: u128 = 1024 * 1024;
const TIB: u128 = 1024 * 1024 * 1024;

/// The unit a size is returned in, which is also the unit of a bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Mib,
    Gib,
}

impl Unit {
    fn kib(self) -> u128 {
        match self {
            Unit::Mib => MIB,
            Unit::Gib => GIB,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Mib => "MiB",
            Unit::Gib => "GiB",
        }
    }
}

/// Parses a size into whole `unit`s; refuses zero, fractions of the unit and unknown suffixes.
pub fn parse(text: &str, unit: Unit) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let suffix_kib = match suffix.trim().to_ascii_lowercase().as_str() {
        "" => unit.kib(),
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ => {
            return Err(format!(
                "{} is not a size: use a number with M, G or T (like 512M, 1.5G, 20G)",
                hardway::error::quote(text)
            ))
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty()
        || !fraction.chars().all(|c| c.is_ascii_digit())
        || fraction.len() > 9
        || whole.len() > 15
    {
        return Err(format!(
            "{} is not a size: use a number with M, G or T (like 512M, 1.5G, 20G)",
            hardway::error::quote(text)
        ));
    }
    // Exact decimal arithmetic: mantissa × unit / 10^decimals, in KiB.
    let mantissa: u128 = format!("{whole}{fraction}")
        .parse()
        .map_err(|_| format!("{} is not a size", hardway::error::quote(text)))?;
    let scale = 10u128.pow(fraction.len() as u32);
    let kib_times_scale = mantissa * suffix_kib;
    if kib_times_scale == 0 {
        return Err(format!(
            "{} is zero: give a size larger than 0",
            hardway::error::quote(text)
        ));
    }
    let per_unit = unit.kib() * scale;
    if kib_times_scale % per_unit != 0 {
        return Err(format!("{text:?} is not a whole number of {}", unit.name()));
    }
    u64::try_from(kib_times_scale / per_unit)
        .map_err(|_| format!("{} is too large", hardway::error::quote(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_and_without_units() {
        assert_eq!(parse("512M", Unit::Mib), Ok(512));
        assert_eq!(parse("512", Unit::Mib), Ok(512));
        assert_eq!(parse("1.5G", Unit::Mib), Ok(1536));
        assert_eq!(parse("4G", Unit::Mib), Ok(4096));
        assert_eq!(parse("2GiB", Unit::Mib), Ok(2048));
        assert_eq!(parse("1048576K", Unit::Mib), Ok(1024));
        assert_eq!(parse("20", Unit::Gib), Ok(20));
        assert_eq!(parse("20G", Unit::Gib), Ok(20));
        assert_eq!(parse("1T", Unit::Gib), Ok(1024));
        assert_eq!(parse("2048M", Unit::Gib), Ok(2));
        assert_eq!(parse(" 0.5 T ", Unit::Gib), Ok(512));
    }

    #[test]
    fn bad_sizes() {
        for bad in [
            "", "M", "0", "0G", "1.3M", "512M", "1.5", "x", "4Q", "1..2G", "-1G",
        ] {
            assert!(parse(bad, Unit::Gib).is_err(), "{bad}");
        }
        assert!(parse("1.2345M", Unit::Mib)
            .unwrap_err()
            .contains("whole number of MiB"));
    }
}
