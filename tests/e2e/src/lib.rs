//! Helpers shared by the end-to-end tests: the lab (cluster, users, broker), fresh
//! namespaces, kubectl, a Kafka consumer, a disposable broker and the event contract checks.
//!
//! The suite runs against the cluster `KUBECONFIG` names. The lab (`hack/up`) also exports
//! `APIM_LAB_KUBECONFIGS` (one kubeconfig per static-token user) and `APIM_KAFKA_BROKERS`.
//! Without a reachable cluster every test skips with one line, unless
//! `APIM_E2E_REQUIRED=1` (set by `hack/test` and CI), where that is a failure.

pub mod broker;
pub mod crd_install;
pub mod events;
pub mod kafka;
pub mod lab;
pub mod namespace;
pub mod operator;
pub mod wait;
pub mod webhook;

pub use broker::DisposableBroker;
pub use events::{EventCollector, EventRecord, Schemas};
pub use lab::{Lab, LabUser, bin_path, workspace_root};
pub use namespace::TestNamespace;

/// Gets the lab or skips the test: `let lab = e2e::lab_or_skip!();`
#[macro_export]
macro_rules! lab_or_skip {
    () => {
        match $crate::Lab::connect().await {
            Some(lab) => lab,
            None => return,
        }
    };
}
