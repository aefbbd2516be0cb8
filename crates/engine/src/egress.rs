//! Which addresses a delivery may connect to. Endpoint URLs are chosen by customers, so unless private
//! endpoints are allowed, every connection is checked on the address it actually connects to: names are
//! resolved here and non-public addresses dropped before the HTTP client sees them (no DNS-rebinding window),
//! and IP literals in URLs are checked before the request starts.

use std::net::{IpAddr, SocketAddr};

use hookrelay_core::netpolicy::is_public;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What the error says when an endpoint is refused, so developers know how to allow local endpoints.
pub const PRIVATE_ADDRESS_HINT: &str = "set HOOKRELAY_ALLOW_PRIVATE_ENDPOINTS=true to deliver to private, \
     loopback or link-local addresses (local development only)";

/// An endpoint that resolves only to addresses deliveries may not reach.
#[derive(Debug, thiserror::Error)]
#[error("blocked: {host} resolves only to non-public addresses; {PRIVATE_ADDRESS_HINT}")]
pub struct BlockedAddress {
    host: String,
}

/// A resolver that returns only public addresses.
pub struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|addr| is_public(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedAddress { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL whose host is an IP literal (those never reach the resolver). Hostnames pass here and are
/// checked by [`PublicOnlyResolver`] when the connection is made.
pub fn check_literal_host(url: &reqwest::Url) -> Result<(), BlockedAddress> {
    let host = url.host_str().unwrap_or_default();
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    match literal {
        Some(ip) if !is_public(ip) => Err(BlockedAddress { host: ip.to_string() }),
        _ => Ok(()),
    }
}
