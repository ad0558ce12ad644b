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
                || a >= 224) // multicast and reserved
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00 // unique local
                    || (first & 0xffc0) == 0xfe80 // link-local
                    || (first & 0xff00) == 0xff00) // multicast
            }
        },
    }
}

/// Resolves names and keeps only public addresses.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(format!(
                    "{} resolves to no public address (private networks are not allowed)",
                    name.as_str()
                )
                .into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl OutboundHttp {
    pub fn new(allow_private_networks: bool) -> Result<Self, OutboundHttpError> {
        // The process may not have chosen a rustls provider yet (tests, the library alone).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
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
        // An address in the URL itself is not resolved, so the resolver cannot refuse it.
        let literal = request
            .uri()
            .host()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<std::net::IpAddr>().ok());
        if !self.allow_private_networks && literal.is_some_and(|address| !is_public(address)) {
            return Box::pin(async {
                Err(OutboundHttpError::Transport(
                    "the provider named a private address (private networks are not allowed)"
                        .into(),
                ))
            });
        }
        Box::pin(send(self.client.clone(), request))
    }
}

impl OutboundHttp {
    /// POSTs a JSON body with extra headers; answers the status code.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> Result<u16, OutboundHttpError> {
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = request
            .body(body)
            .map_err(|error| OutboundHttpError::Transport(error.to_string()))?;
        use openidconnect::AsyncHttpClient;
        let answer = self.call(request).await?;
        Ok(answer.status().as_u16())
    }
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
    use super::is_public;

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
        ] {
            assert!(!is_public(inside.parse().unwrap()), "{inside}");
        }
        for outside in [
            "8.8.8.8",
            "140.82.112.3",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(outside.parse().unwrap()), "{outside}");
        }
    }
}
