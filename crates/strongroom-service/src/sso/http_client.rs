//! The HTTP client that talks to identity providers: reqwest on rustls (ring), no redirects
//! followed, short timeouts, answers capped in size, so a slow or hostile provider cannot tie
//! up the server.

use std::time::Duration;

const ANSWER_BYTES_MAX: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProviderHttpError {
    #[error("{0}")]
    Transport(String),
    #[error("the provider's answer is larger than {ANSWER_BYTES_MAX} bytes")]
    TooLarge,
}

/// The client openidconnect sends its requests through.
pub(crate) struct ProviderHttp(reqwest::Client);

impl ProviderHttp {
    pub fn new() -> Result<Self, ProviderHttpError> {
        // The process may not have chosen a rustls provider yet (tests, the library alone).
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .map(ProviderHttp)
            .map_err(|error| ProviderHttpError::Transport(error.to_string()))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = ProviderHttpError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(send(self.0.clone(), request))
    }
}

/// Sends one request for openidconnect and returns the whole (bounded) answer.
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, ProviderHttpError> {
    let transport =
        |error: reqwest::Error| ProviderHttpError::Transport(error.without_url().to_string());
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
            return Err(ProviderHttpError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    answer
        .body(bytes)
        .map_err(|error| ProviderHttpError::Transport(error.to_string()))
}
