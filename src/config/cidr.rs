//! `allow_from` and `trusted_proxies` entries written as CIDR blocks or
//! addresses, read strictly: no host bits, IPv4-mapped entries as IPv4.

use std::str::FromStr;

use ipnet::IpNet;

/// A CIDR entry that does not parse, or has host bits set; the message says what to write.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidCidr(String);

/// A CIDR block; a bare address means that one host.
///
/// A block with host bits set (`149.154.160.1/20`) is refused rather than
/// read as its network: it may as well mean the one address, and reading it
/// either way silently would let in more, or fewer, clients than meant.
#[derive(Debug, Clone, Copy)]
pub struct Cidr(pub IpNet);

impl Cidr {
    /// Whether `text` is written as a CIDR block, valid or not (for telling
    /// a bad block from a set name).
    pub fn is_written_as_one(text: &str) -> bool {
        text.parse::<IpNet>().is_ok()
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;
    fn from_str(text: &str) -> Result<Self, InvalidCidr> {
        if let Ok(net) = text.parse::<IpNet>() {
            if net.trunc() != net {
                return Err(InvalidCidr(format!(
                    "{text:?} has host bits set: write {:?} for the network, or {:?} for the one address",
                    net.trunc().to_string(),
                    net.addr().to_string()
                )));
            }
            return Ok(Cidr(unmapped(net)));
        }
        text.parse::<std::net::IpAddr>()
            .map(|ip| Cidr(unmapped(IpNet::from(ip))))
            .map_err(|_| InvalidCidr(format!("invalid CIDR {text:?}; write e.g. \"10.0.0.0/8\" or \"127.0.0.1\"")))
    }
}

/// `::ffff:10.0.0.0/104` as `10.0.0.0/8`: an IPv4 client is compared as
/// IPv4 (a dual-stack socket's mapped peer too), so the mapped form written
/// in `allow_from` or `trusted_proxies` would match nothing.
fn unmapped(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .addr()
            .to_ipv4_mapped()
            .and_then(|v4| ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, IpNet::V4),
        _ => net,
    }
}
