//! `cidr-alloc split RANGE --prefix N --count K`: the first K subnets of a range, without a
//! document — the same arithmetic the allocator uses for pod CIDRs, for scripts and people.

use ipnet::IpNet;

use crate::error::Error;
use crate::pool::Pool;

/// The first `count` subnets of `prefix` in `range`.
pub fn split(range: IpNet, prefix: u8, count: u128) -> Result<Vec<IpNet>, Error> {
    if prefix <= range.prefix_len() || prefix > range.max_prefix_len() {
        return Err(Error::invalid(
            "--prefix",
            format!(
                "/{prefix} does not split {range}: give a prefix between /{} and /{}",
                range.prefix_len() + 1,
                range.max_prefix_len()
            ),
        ));
    }
    let pool = Pool::subnets(range, prefix);
    if count > pool.room() {
        return Err(Error::Exhausted {
            range: range.to_string(),
            fit: format!("{} /{prefix} subnets", pool.room()),
            need: count.to_string(),
            hint: "use a larger range, a longer --prefix or a smaller --count",
        });
    }
    Ok((0..count).map(|slot| pool.net_at(slot)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_ipv4_and_ipv6() {
        let nets = split("10.200.0.0/16".parse().unwrap(), 24, 3).unwrap();
        let text: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["10.200.0.0/24", "10.200.1.0/24", "10.200.2.0/24"]);
        let nets = split("fd00:10:200::/56".parse().unwrap(), 64, 2).unwrap();
        assert_eq!(nets[1].to_string(), "fd00:10:200:1::/64");
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let err = split("10.200.0.0/16".parse().unwrap(), 24, 257).unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.200.0.0/16 is exhausted: 256 /24 subnets fit, 257 needed; use a larger range, a longer --prefix or a smaller --count"
        );
        assert!(split("10.200.0.0/16".parse().unwrap(), 16, 1).is_err());
    }
}
