//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a reconcile outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// Kind of the reconciled resource.
    pub kind: String,
    /// `ok` or the error's metric label.
    pub result: String,
}

/// Labels carrying only the kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Kind of the resource.
    pub kind: String,
}

/// Labels of a gateway call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayCallLabels {
    /// The gateway's environment.
    pub environment: String,
    /// The call, e.g. `create_api`.
    pub operation: String,
    /// The final HTTP status, or `timeout`, `connect`, `error`.
    pub status: String,
}

/// Labels of an AWX job.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwxJobLabels {
    /// The job template's name.
    pub template: String,
    /// The job's final status (`successful`, `failed`, …).
    pub status: String,
}

/// Every metric of the operator, registered in one registry.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration by kind, in seconds.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// Status writes to the API server by kind (zero while converged).
    pub status_writes: Family<KindLabels, Counter>,
    /// 1 while this replica holds the leader lease.
    pub leader: Gauge,
    /// Gateway calls by environment, operation and final status.
    pub gateway_calls: Family<GatewayCallLabels, Counter>,
    /// Duration of AWX jobs by template and status, in seconds.
    pub awx_job_duration: Family<AwxJobLabels, Histogram>,
    /// The event pipeline: published, failed, owed.
    pub events: crate::events::EventMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("apim_operator");
        let events = crate::events::EventMetrics::new();
        events.register(&mut registry);
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles by kind and result",
            reconciles.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by kind",
            reconcile_duration.clone(),
        );
        let status_writes = Family::<KindLabels, Counter>::default();
        registry.register(
            "status_writes",
            "Status writes to the API server by kind",
            status_writes.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        let gateway_calls = Family::<GatewayCallLabels, Counter>::default();
        registry.register(
            "gateway_calls",
            "Gateway calls by environment, operation and status",
            gateway_calls.clone(),
        );
        let awx_job_duration = Family::<AwxJobLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.5, 2.0, 14))
        });
        registry.register(
            "awx_job_duration_seconds",
            "AWX job duration by template and status",
            awx_job_duration.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            status_writes,
            leader,
            gateway_calls,
            awx_job_duration,
            events,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one reconcile of `kind` with `result` and its duration.
    pub fn observe_reconcile(&self, kind: &str, result: &str, seconds: f64) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.into(),
                result: result.into(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(seconds);
    }
}

impl crate::gateway::GatewayMetrics for Metrics {
    fn observe(&self, call: &crate::gateway::GatewayCall<'_>) {
        self.gateway_calls
            .get_or_create(&GatewayCallLabels {
                environment: call.environment.to_string(),
                operation: call.operation.to_string(),
                status: call.status.to_string(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_show_in_the_exposition() {
        let m = Metrics::default();
        m.observe_reconcile("Api", "ok", 0.01);
        m.status_writes
            .get_or_create(&KindLabels { kind: "Api".into() })
            .inc();
        let text = m.encode();
        assert!(
            text.contains(r#"apim_operator_reconciles_total{kind="Api",result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"apim_operator_status_writes_total{kind="Api"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("apim_operator_reconcile_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn gateway_calls_and_awx_jobs_show_in_the_exposition() {
        use crate::gateway::GatewayMetrics;
        let m = Metrics::default();
        m.observe(&crate::gateway::GatewayCall {
            environment: "dev",
            operation: "create_api",
            status: "200",
            attempts: 1,
            elapsed: std::time::Duration::from_millis(3),
        });
        m.awx_job_duration
            .get_or_create(&AwxJobLabels {
                template: "apim-deploy-api".into(),
                status: "successful".into(),
            })
            .observe(2.0);
        let text = m.encode();
        assert!(text.contains(r#"apim_operator_gateway_calls_total{environment="dev",operation="create_api",status="200"} 1"#), "{text}");
        assert!(
            text.contains("apim_operator_awx_job_duration_seconds_bucket"),
            "{text}"
        );
    }
}
