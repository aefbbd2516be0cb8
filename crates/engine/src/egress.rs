//! Which addresses a delivery may connect to. Endpoint URLs are chosen by customers, so every connection is
//! checked on the address it actually connects to: the HTTP client resolves names only through
//! [`PolicyResolver`], which drops the addresses the [`AddressPolicy`] refuses before the client sees them (the
//! resolver that filters is the one the client connects with, so there is no DNS-rebinding window), and IP
//! literals in URLs, which never reach a resolver, are checked by [`UrlRules`] before the request starts.
//!
//! With an egress proxy (`HOOKRELAY_EGRESS_PROXY`) the proxy resolves endpoint names, not hookrelay: only
//! IP-literal hosts are checked here, and the proxy must do its own filtering.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hookrelay_core::netpolicy::{AddressPolicy, IpNet};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What the error says when an endpoint is refused, so developers know how to allow local endpoints.
pub const PRIVATE_ADDRESS_HINT: &str = "to allow it, add its range to HOOKRELAY_WHITELIST_SUBNETS (e.g. \
     10.0.0.0/8,127.0.0.1/32), or set HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS=true to allow every private, loopback and \
     link-local address (local development only)";

/// Why a delivery was not sent.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("blocked: {host} resolves only to private or reserved addresses; {PRIVATE_ADDRESS_HINT}")]
    PrivateAddress { host: String },
    #[error(
        "blocked: the endpoint URL is {scheme}:// but HOOKRELAY_HTTPS_ONLY is on; change the endpoint to an \
         https:// URL, or set HOOKRELAY_HTTPS_ONLY=false to allow http://"
    )]
    NotHttps { scheme: String },
}

/// The address policy of a server's settings (`HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS`, `HOOKRELAY_WHITELIST_SUBNETS`).
/// The dispatcher, on every connection, and the API, on endpoint URLs whose host is an IP address, both build
/// theirs here, so that an address the API accepts is one the dispatcher connects to.
pub fn address_policy(allow_private_endpoints: bool, whitelist_subnets: &[IpNet]) -> Arc<AddressPolicy> {
    Arc::new(AddressPolicy::new(allow_private_endpoints, whitelist_subnets.to_vec()))
}

/// A resolver that returns only the addresses the policy allows.
pub struct PolicyResolver {
    policy: Arc<AddressPolicy>,
}

impl PolicyResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|addr| policy.allows(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused::PrivateAddress { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The checks a delivery's URL passes before its request starts.
#[derive(Clone, Debug, Default)]
pub struct UrlRules {
    pub policy: Arc<AddressPolicy>,
    /// Refuse `http://` URLs.
    pub https_only: bool,
}

impl UrlRules {
    /// Checks the scheme, and a host that is an IP literal (those never reach the resolver). Hostnames pass here
    /// and are checked by [`PolicyResolver`] when the connection is made.
    pub fn check(&self, url: &reqwest::Url) -> Result<(), Refused> {
        if self.https_only && url.scheme() != "https" {
            return Err(Refused::NotHttps { scheme: url.scheme().to_owned() });
        }
        // The URL parser has already normalised IPv4 literals (`2130706433`, `0x7f.1` are 127.0.0.1 here).
        let host = url.host_str().unwrap_or_default();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        match literal {
            Some(ip) if !self.policy.allows(ip) => Err(Refused::PrivateAddress { host: ip.to_string() }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use hookrelay_core::netpolicy::parse_subnets;

    use super::*;

    fn check(rules: &UrlRules, url: &str) -> Result<(), String> {
        rules.check(&reqwest::Url::parse(url).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn literal_hosts_and_schemes_are_checked_before_connecting() {
        let strict = UrlRules::default();
        assert!(check(&strict, "http://93.184.216.34/hook").is_ok());
        assert!(check(&strict, "http://example.com/hook").is_ok(), "names are checked when resolved");
        let err = check(&strict, "http://169.254.169.254/latest/meta-data").unwrap_err();
        assert!(err.contains("HOOKRELAY_WHITELIST_SUBNETS") && err.contains("HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS"));
        assert!(check(&strict, "http://[::1]:8080/").is_err());
        assert!(check(&strict, "http://[::ffff:127.0.0.1]/").is_err());
        assert!(check(&strict, "http://[::127.0.0.1]/").is_err(), "IPv4-compatible");
        assert!(check(&strict, "http://[::ffff:0:127.0.0.1]/").is_err(), "IPv4-translated");
        assert!(check(&strict, "http://[64:ff9b::a9fe:a9fe]/").is_err(), "NAT64 to 169.254.169.254");
        assert!(check(&strict, "http://2130706433/").is_err(), "127.0.0.1 spelled as a number");

        let whitelisted =
            UrlRules { policy: address_policy(false, &parse_subnets("127.0.0.1/32").unwrap()), https_only: false };
        assert!(check(&whitelisted, "http://127.0.0.1:9000/").is_ok());
        assert!(check(&whitelisted, "http://127.0.0.2:9000/").is_err());

        let https_only = UrlRules { https_only: true, ..UrlRules::default() };
        let err = check(&https_only, "http://example.com/").unwrap_err();
        assert!(err.contains("HOOKRELAY_HTTPS_ONLY=false"), "{err}");
        assert!(check(&https_only, "https://example.com/").is_ok());
    }
}
