//! Prometheus metrics (prefix `apim_webhook_`), served at `/metrics`.
//!
//! - `apim_webhook_decisions_total{endpoint,kind,operation,result}`: one per review;
//!   `result` is `allowed`, `warned`, `denied`, `patched` (mutate) or `invalid`.
//! - `apim_webhook_findings_total{rule_set,mode}`: rule violations found, by the mode that
//!   applied (`enforce`, `warn`, `audit`); audit-mode violations are counted here.
//! - `apim_webhook_review_duration_seconds{endpoint}`: time from the body read to the
//!   response serialised (parse + decide + serialise), the server-side latency.
//! - `apim_webhook_tls_reloads_total{result}`: certificate reloads.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency histogram, in seconds (10 µs … 1 s).
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Labels of a decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// `validate` or `mutate`.
    pub endpoint: &'static str,
    /// Kind, from a fixed set (unknown kinds are `other`, unparsed reviews `unknown`).
    pub kind: &'static str,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT` or `unknown`.
    pub operation: &'static str,
    /// Outcome.
    pub result: &'static str,
}

/// Labels of a rule finding.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FindingLabels {
    /// Rule set name as in the configuration.
    pub rule_set: &'static str,
    /// Enforcement mode that applied.
    pub mode: &'static str,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// `validate` or `mutate`.
    pub endpoint: &'static str,
}

/// Labels of certificate reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// All metrics of the webhook.
pub struct Metrics {
    registry: Registry,
    /// Decisions.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Findings.
    pub findings: Family<FindingLabels, Counter>,
    /// Latency.
    pub duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// TLS reloads.
    pub tls_reloads: Family<ResultLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("apim_webhook");
        let decisions = Family::<DecisionLabels, Counter>::default();
        let findings = Family::<FindingLabels, Counter>::default();
        let duration = Family::<EndpointLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let tls_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "decisions",
            "Admission reviews answered, by endpoint, kind, operation and result",
            decisions.clone(),
        );
        registry.register(
            "findings",
            "Rule violations found, by rule set and the enforcement mode that applied",
            findings.clone(),
        );
        registry.register(
            "review_duration_seconds",
            "Server-side time to parse, decide and serialise one review",
            duration.clone(),
        );
        registry.register(
            "tls_reloads",
            "Serving certificate reloads from files",
            tls_reloads.clone(),
        );
        Self {
            registry,
            decisions,
            findings,
            duration,
            tls_reloads,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "failed to encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_counters_and_histogram() {
        let m = Metrics::new();
        m.decisions
            .get_or_create(&DecisionLabels {
                endpoint: "validate",
                kind: "Api",
                operation: "CREATE",
                result: "denied",
            })
            .inc();
        m.duration
            .get_or_create(&EndpointLabels {
                endpoint: "validate",
            })
            .observe(0.000_3);
        let text = m.encode();
        assert!(
            text.contains(r#"apim_webhook_decisions_total{endpoint="validate",kind="Api",operation="CREATE",result="denied"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"apim_webhook_review_duration_seconds_bucket{le="0.0005",endpoint="validate"} 1"#
            ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
