//! The client's address, for throttling and the tenants' firewalls: the socket's peer, or,
//! when that peer is a configured trusted proxy, the nearest address in `X-Forwarded-For`
//! that is not itself a trusted proxy. Anyone can send the header; it counts only from a proxy.

use crate::AppState;
use crate::problem::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use std::net::IpAddr;

/// The address a request is taken to come from.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

/// `forwarded_for` holds every `X-Forwarded-For` line in order: some proxies add a line of
/// their own instead of appending to the client's, so the first line alone may be the
/// client's invention. IPv4-mapped IPv6 addresses count as the IPv4 addresses they are.
pub(crate) fn client_address(
    peer: IpAddr,
    forwarded_for: &[&str],
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |address: &IpAddr| {
        trusted_proxies
            .iter()
            .any(|network| network.contains(address))
    };
    if !trusted(&peer) {
        return peer;
    }
    let mut nearest = peer;
    let hops = forwarded_for
        .iter()
        .rev()
        .flat_map(|line| line.rsplit(','))
        .map(|hop| {
            hop.trim()
                .parse::<IpAddr>()
                .map(|address| address.to_canonical())
        });
    for hop in hops {
        match hop {
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
    if let Some(raw_slug) = request
        .uri()
        .path()
        .strip_prefix("/v1/tenants/")
        .and_then(|rest| rest.split('/').next())
        .filter(|slug| !slug.is_empty())
    {
        // Decoded as the handlers' path extractor decodes it, so `%61cme` meets acme's rules.
        let Ok(slug) = percent_encoding::percent_decode_str(raw_slug).decode_utf8() else {
            return ApiError::from(strongroom_service::ServiceError::NotFound("tenant"))
                .into_response();
        };
        let credential = crate::extract::presented_credential(request.method(), request.headers());
        let support_token = credential.filter(|token| token.starts_with("srg_"));
        if let Err(error) = state
            .platform
            .firewall_admits(&slug, address, support_token)
            .await
        {
            // No handler authenticates a refused request; the trail still names whose
            // credential came from the refused address (a leaked token used elsewhere shows).
            // A change's intent has already looked it up.
            let facts = request
                .extensions()
                .get::<crate::audit::AuditFacts>()
                .filter(|facts| !facts.names_someone());
            if let (
                strongroom_service::ServiceError::FirewallDenied,
                Some(credential),
                Some(facts),
            ) = (&error, credential, facts)
            {
                let platform = &state.platform;
                facts.set_actor(
                    platform
                        .presented_actor("public", Some(&slug), credential)
                        .await,
                );
            }
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
            client_address(ip("203.0.113.5"), &["198.51.100.1"], &proxies),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["198.51.100.1"], &proxies),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &["6.6.6.6, 198.51.100.1, 10.0.0.3"],
                &proxies
            ),
            ip("198.51.100.1"),
            "the nearest untrusted hop, not what the client claims further left"
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["garbage"], &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["6.6.6.6, garbage, 10.0.0.3"], &proxies),
            ip("10.0.0.3"),
            "an unreadable hop ends the walk: what lies left of it, the client could write"
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &[], &proxies),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.1"], &proxies),
            ip("198.51.100.1"),
            "the proxy's own line, not the client's, when the proxy adds a line"
        );
        assert_eq!(
            client_address(ip("::ffff:10.0.0.2"), &["198.51.100.1"], &proxies),
            ip("198.51.100.1"),
            "a proxy reached through an IPv6 socket is still the proxy"
        );
        assert_eq!(
            client_address(ip("::ffff:203.0.113.5"), &[], &proxies),
            ip("203.0.113.5")
        );
    }
}
