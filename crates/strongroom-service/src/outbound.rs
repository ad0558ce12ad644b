//! The HTTP client for addresses tenant admins configure (identity providers, alert
//! webhooks): reqwest on rustls (ring), no redirects followed, short timeouts, answers capped
//! in size, so a slow or hostile endpoint cannot tie up the server. Unless the operator allows private networks, it refuses every address that
//! is not public (loopback, private, link-local, cloud metadata…), whether a URL names it
//! or a name resolves to it: a tenant admin's provider settings must not reach the inside.

use std::time::Duration;

const ANSWER_BYTES_MAX: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum OutboundHttpError {
    #[error("{0}")]
    Transport(String),
    #[error("the provider's answer is larger than {ANSWER_BYTES_MAX} bytes")]
    TooLarge,
}

/// The client openidconnect sends its requests through.
pub(crate) struct OutboundHttp {
    client: reqwest::Client,
    allow_private_networks: bool,
}

/// Whether an address is on the public internet.
pub(crate) fn is_public(address: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 198 && (18..20).contains(&b)) // benchmarking
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // protocol assignments
                || a >= 224) // multicast and reserved
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded_v4 = |high: u16, low: u16| {
                IpAddr::V4(std::net::Ipv4Addr::from(
                    (u32::from(high) << 16) | u32::from(low),
                ))
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            // Forms that carry an IPv4 address a gateway may deliver to: NAT64
            // (64:ff9b::/96), 6to4 (2002::/16) and the old IPv4-compatible ::a.b.c.d.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(embedded_v4(segments[6], segments[7]));
            }
            if segments[0] == 0x2002 {
                return is_public(embedded_v4(segments[1], segments[2]));
            }
            if segments[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(embedded_v4(segments[6], segments[7]));
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first & 0xff00) == 0xff00) // multicast
        }
    }
}

/// The public addresses of a lookup's answer. A name that does not resolve fails with the same
/// words as one that resolves only to private addresses: the failure is shown to the tenant's
/// admins, who must not learn which names exist inside the server's network.
fn public_addresses(
    name: &str,
    found: std::io::Result<impl Iterator<Item = std::net::SocketAddr>>,
) -> Result<Vec<std::net::SocketAddr>, String> {
    let addresses: Vec<std::net::SocketAddr> = found
        .map(|found| found.filter(|address| is_public(address.ip())).collect())
        .unwrap_or_default();
    if addresses.is_empty() {
        return Err(format!(
            "{name} resolves to no public address (private networks are not allowed)"
        ));
    }
    Ok(addresses)
}

/// Resolves names and keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await;
            let addresses = public_addresses(name.as_str(), found)?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl OutboundHttp {
    pub fn new(allow_private_networks: bool) -> Result<Self, OutboundHttpError> {
        // The process may not have chosen a rustls provider yet (tests, the library alone).
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No proxy from the environment: a proxy would resolve names itself, past the filter.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT);
        if !allow_private_networks {
            builder = builder.dns_resolver(std::sync::Arc::new(PublicOnly));
        }
        builder
            .build()
            .map(|client| OutboundHttp {
                client,
                allow_private_networks,
            })
            .map_err(|error| OutboundHttpError::Transport(error.to_string()))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for OutboundHttp {
    type Error = OutboundHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        if let Err(error) = self.check_destination(&request.uri().to_string()) {
            return Box::pin(async { Err(error) });
        }
        Box::pin(send(self.client.clone(), request))
    }
}

impl OutboundHttp {
    /// Refuses a URL that is not valid, or that names a private address when those are not
    /// allowed. An address in the URL itself is not resolved, so the resolver cannot refuse
    /// it. The host is read as reqwest will read it (WHATWG URL rules), so spellings such as
    /// `2130706433` or `127.1` are seen as the 127.0.0.1 they are.
    fn check_destination(&self, url: &str) -> Result<(), OutboundHttpError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|_| OutboundHttpError::Transport("the address is not a valid URL".into()))?;
        if !self.allow_private_networks && names_private_address(&parsed) {
            return Err(OutboundHttpError::Transport(
                "the URL names a private address (private networks are not allowed)".into(),
            ));
        }
        Ok(())
    }

    /// POSTs a JSON body with extra headers; answers the status code. The answer's body is
    /// not read: a receiver's status is its whole answer.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<u16, OutboundHttpError> {
        self.check_destination(url)?;
        let mut request = self
            .client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|error| OutboundHttpError::Transport(describe_transport(error)))?;
        Ok(response.status().as_u16())
    }
}

/// Whether a URL's host is a literal private address (or localhost), as reqwest reads it.
pub(crate) fn names_private_address(url: &reqwest::Url) -> bool {
    if url.host_str() == Some("localhost") {
        return true;
    }
    url.host_str()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .and_then(|host| host.parse::<std::net::IpAddr>().ok())
        .is_some_and(|address| !is_public(address))
}

/// A transport error as a person can act on it: the cause, not only "error sending request".
/// The URL is left out: a webhook's path may hold a secret.
fn describe_transport(error: reqwest::Error) -> String {
    let mut causes = String::new();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        causes.push_str(": ");
        causes.push_str(&cause.to_string());
        source = cause.source();
    }
    format!("{}{causes}", error.without_url())
}

/// Sends one request for openidconnect and returns the whole (bounded) answer.
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, OutboundHttpError> {
    let transport =
        |error: reqwest::Error| OutboundHttpError::Transport(error.without_url().to_string());
    let (parts, body) = request.into_parts();
    let mut response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(transport)?;
    let mut answer = http::Response::builder().status(response.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = response.headers().clone();
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > ANSWER_BYTES_MAX {
            return Err(OutboundHttpError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    answer
        .body(bytes)
        .map_err(|error| OutboundHttpError::Transport(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{is_public, public_addresses};

    #[test]
    fn a_missing_name_fails_as_a_private_one_does() {
        type Found = std::io::Result<std::vec::IntoIter<std::net::SocketAddr>>;
        let private: Found = Ok(vec!["10.1.2.3:0".parse().unwrap()].into_iter());
        let missing: Found = Err(std::io::Error::other("Name or service not known"));
        assert_eq!(
            public_addresses("db.internal", private).unwrap_err(),
            public_addresses("db.internal", missing).unwrap_err()
        );
        let mixed: Found = Ok(vec![
            "10.1.2.3:0".parse().unwrap(),
            "93.184.215.14:0".parse().unwrap(),
        ]
        .into_iter());
        assert_eq!(
            public_addresses("mixed.example", mixed).unwrap(),
            vec!["93.184.215.14:0".parse::<std::net::SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn only_public_addresses_are_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "::7f00:1",
            "fec0::1",
            "198.18.0.1",
            "192.0.0.8",
        ] {
            assert!(!is_public(inside.parse().unwrap()), "{inside}");
        }
        for outside in [
            "8.8.8.8",
            "140.82.112.3",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(outside.parse().unwrap()), "{outside}");
        }
    }

    /// However the URL spells a private address, it is refused before anything is sent.
    #[tokio::test]
    async fn private_addresses_are_refused_in_any_spelling() {
        let client = super::OutboundHttp::new(false).unwrap();
        for url in [
            "https://127.0.0.1:8443/x",
            "https://2130706433:8443/x",
            "https://127.1:8443/x",
            "https://0x7f.0.0.1:8443/x",
            "https://[::ffff:127.0.0.1]:8443/x",
            "https://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        ] {
            let refused = client.post_json(url, &[], b"{}".to_vec()).await;
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|error| error.to_string().contains("private address")),
                "{url}: {refused:?}"
            );
        }
    }
}
