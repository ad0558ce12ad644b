//! The client's address, for throttling and the tenants' firewalls: the socket's peer, or,
//! when that peer is a configured trusted proxy, the nearest address in `X-Forwarded-For`
//! that is not itself a trusted proxy. Anyone can send the header; it counts only from a proxy.

use crate::AppState;
use crate::problem::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use std::net::IpAddr;

/// The address a request is taken to come from.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

pub(crate) fn client_address(
    peer: IpAddr,
    forwarded_for: Option<&str>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let trusted = |address: &IpAddr| {
        trusted_proxies
            .iter()
            .any(|network| network.contains(address))
    };
    if !trusted(&peer) {
        return peer;
    }
    let Some(forwarded_for) = forwarded_for else {
        return peer;
    };
    let mut nearest = peer;
    for hop in forwarded_for.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(address) if trusted(&address) => nearest = address,
            Ok(address) => return address,
            // A hop we cannot read ends the walk at the last address we could trust.
            Err(_) => return nearest,
        }
    }
    nearest
}

/// A request to a tenant's paths must pass that tenant's firewall before anything else (the
/// audit layer outside has worked out the client address).
pub async fn admit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ClientAddress>()
        .map(|ClientAddress(address)| *address);
    if let Some(slug) = request
        .uri()
        .path()
        .strip_prefix("/v1/tenants/")
        .and_then(|rest| rest.split('/').next())
        .filter(|slug| !slug.is_empty())
    {
        let support = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.trim_start().starts_with("Bearer srg_"));
        if let Err(error) = state.platform.firewall_admits(slug, address, support).await {
            return ApiError::from(error).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(
            client_address(ip("203.0.113.5"), Some("198.51.100.1"), &proxies),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("198.51.100.1"), &proxies),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                Some("6.6.6.6, 198.51.100.1, 10.0.0.3"),
                &proxies
            ),
            ip("198.51.100.1"),
            "the nearest untrusted hop, not what the client claims further left"
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), Some("garbage"), &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), None, &proxies),
            ip("10.0.0.2")
        );
    }
}
