//! Prometheus metrics served on the admin listener.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use strongroom_service::SecurityEventKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    listener: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    listener: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecurityLabels {
    kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    connections_closed: Family<ConnectionLabels, Counter>,
    security_events: Family<SecurityLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("strongroom");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by listener and status",
            requests.clone(),
        );
        // Connections that never carried a request, so are in no audit event: scanners,
        // clients that do not speak TLS 1.2+, or more clients than `connections_max`.
        let connections_closed = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "connections_closed_before_a_request",
            "Connections closed before any request, by listener and reason (tls_handshake_failed, tls_handshake_timed_out, connection_limit)",
            connections_closed.clone(),
        );
        let security_events = Family::<SecurityLabels, Gauge>::default();
        registry.register(
            "security_events",
            "Security events raised since start, by kind",
            security_events.clone(),
        );
        Self {
            registry,
            requests,
            connections_closed,
            security_events,
        }
    }
}

impl Metrics {
    pub fn count_request(&self, listener: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { listener, status })
            .inc();
    }

    /// A connection closed before it carried a request: `reason` is `tls_handshake_failed`,
    /// `tls_handshake_timed_out` or `connection_limit`.
    pub fn count_connection_closed(&self, listener: &'static str, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ConnectionLabels { listener, reason })
            .inc();
    }

    pub fn render(&self, security_counts: &[(SecurityEventKind, u64)]) -> String {
        for (kind, count) in security_counts {
            self.security_events
                .get_or_create(&SecurityLabels {
                    kind: kind.as_str(),
                })
                .set(*count as i64);
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text = "# metrics could not be encoded\n".to_owned();
        }
        text
    }
}
