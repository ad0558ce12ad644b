//! A tenant's virtual firewall (P1): allow and deny rules over IPv4/IPv6 networks. Deny rules
//! always win; when an allow list exists, only its networks get in, plus (if the tenant lets
//! them) operators under a break-glass grant coming from the operator's support networks.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

pub const RULES_MAX: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FirewallRules {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
    /// Operators under a break-glass grant from the support networks pass the allow list.
    pub allow_support: bool,
}

/// Who is asking, for the firewall.
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    pub address: IpAddr,
    /// The request carries a break-glass token.
    pub support: bool,
    /// The operator's configured support networks.
    pub support_networks: &'a [IpNet],
}

impl FirewallRules {
    /// Parses rule texts such as `10.0.0.0/8`, `2001:db8::/32` or a single address.
    pub fn parse(allow: &[String], deny: &[String], allow_support: bool) -> Result<Self, String> {
        let parse_list = |name: &str, texts: &[String]| -> Result<Vec<IpNet>, String> {
            if texts.len() > RULES_MAX {
                return Err(format!("{name}: at most {RULES_MAX} networks"));
            }
            texts
                .iter()
                .map(|text| parse_network(text).map_err(|reason| format!("{name}: {reason}")))
                .collect()
        };
        Ok(FirewallRules {
            allow: parse_list("allow", allow)?,
            deny: parse_list("deny", deny)?,
            allow_support,
        })
    }

    pub fn permits(&self, visitor: Visitor<'_>) -> bool {
        let address = canonical(visitor.address);
        if self.deny.iter().any(|network| network.contains(&address)) {
            return false;
        }
        self.allow.is_empty()
            || self.allow.iter().any(|network| network.contains(&address))
            || (visitor.support
                && self.allow_support
                && visitor
                    .support_networks
                    .iter()
                    .any(|network| network.contains(&address)))
    }
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:a.b.c.d`) is the IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// A network in CIDR notation, or one address (a /32 or /128). IPv4 written as IPv4-mapped
/// IPv6 (`::ffff:203.0.113.0/120`) is the IPv4 network, as visitors' addresses are.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(network) = text.parse::<IpNet>() {
        if network.trunc() != network {
            return Err(format!(
                "{text:?} has host bits set; did you mean {}?",
                network.trunc()
            ));
        }
        return Ok(canonical_network(network));
    }
    text.parse::<IpAddr>()
        .map(|address| canonical_network(IpNet::from(address)))
        .map_err(|_| format!("{text:?} is not a network such as 10.0.0.0/8 or 2001:db8::/32"))
}

/// An IPv4-mapped IPv6 network of /96 or longer as its IPv4 network.
fn canonical_network(network: IpNet) -> IpNet {
    match network {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .network()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(network, IpNet::V4),
        _ => network,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_written_as_mapped_ipv6_matches_ipv4_visitors() {
        assert_eq!(
            parse_network("::ffff:203.0.113.0/120").unwrap(),
            "203.0.113.0/24".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_network("::ffff:203.0.113.7").unwrap(),
            "203.0.113.7/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_network("2001:db8::/32").unwrap(),
            "2001:db8::/32".parse::<IpNet>().unwrap(),
            "other IPv6 stays as it is"
        );
        let rules = FirewallRules::parse(&[], &["::ffff:203.0.113.7".into()], false).unwrap();
        let denied = Visitor {
            address: "203.0.113.7".parse().unwrap(),
            support: false,
            support_networks: &[],
        };
        assert!(!rules.permits(denied));
    }

    fn visitor(address: &str, support: bool, support_networks: &[IpNet]) -> bool {
        let rules = FirewallRules::parse(
            &["10.0.0.0/8".into(), "2001:db8::/32".into()],
            &["10.66.0.0/16".into()],
            true,
        )
        .unwrap();
        rules.permits(Visitor {
            address: address.parse().unwrap(),
            support,
            support_networks,
        })
    }

    #[test]
    fn allow_deny_and_support_networks() {
        let support: Vec<IpNet> = vec!["192.0.2.0/24".parse().unwrap()];
        assert!(visitor("10.1.2.3", false, &support));
        assert!(
            visitor("::ffff:10.1.2.3", false, &support),
            "IPv4 through an IPv6 socket"
        );
        assert!(visitor("2001:db8::1", false, &support));
        assert!(!visitor("10.66.1.1", false, &support), "deny wins");
        assert!(
            !visitor("203.0.113.9", false, &support),
            "not on the allow list"
        );
        assert!(
            !visitor("192.0.2.7", false, &support),
            "support range only for grants"
        );
        assert!(visitor("192.0.2.7", true, &support));
        assert!(
            FirewallRules::default().permits(Visitor {
                address: "203.0.113.9".parse().unwrap(),
                support: false,
                support_networks: &[],
            }),
            "no rules, no limits"
        );
    }

    #[test]
    fn rules_are_parsed_strictly() {
        assert_eq!(
            parse_network("10.1.2.3").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert!(
            parse_network("10.1.2.3/8")
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("example.com").is_err());
        let too_many: Vec<String> = (0..=RULES_MAX)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        assert!(FirewallRules::parse(&too_many, &[], false).is_err());
    }
}
