//! `TeardownPolicy` (cluster-scoped): which expired resources are deleted, when, after which
//! notices.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{duration::ShortDuration, outbox::PendingEvent};

/// The default schedule: every day at 02:00 UTC.
pub const DEFAULT_SCHEDULE: &str = "0 2 * * *";
/// The default cap on deletions per run.
pub const DEFAULT_MAX_DELETIONS_PER_RUN: i32 = 50;
/// The schema pattern of `spec.schedule`: five crontab fields separated by spaces.
pub const SCHEDULE_PATTERN: &str = r"^[0-9A-Za-z*/,?#-]+( +[0-9A-Za-z*/,?#-]+){4}$";

/// A clean-up policy: every governed resource with `auto-teardown=true` whose
/// `creationTimestamp + ttl` has passed is announced to its owner at each lead time, then
/// deleted. Resources in prod or with `data-class=restricted` are never touched.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "apim.cab-i.com",
    version = "v1alpha1",
    kind = "TeardownPolicy",
    plural = "teardownpolicies",
    singular = "teardownpolicy",
    status = "TeardownPolicyStatus",
    derive = "PartialEq",
    shortname = "teardown",
    shortname = "apimtd",
    category = "apim",
    doc = "A cluster-wide clean-up policy: expired resources with auto-teardown=true are announced to their owner, then deleted. Never touches prod or restricted data.",
    printcolumn = r#"{"name":"Kinds","type":"string","jsonPath":".spec.kinds"}"#,
    printcolumn = r#"{"name":"Schedule","type":"string","jsonPath":".spec.schedule"}"#,
    printcolumn = r#"{"name":"Dry-Run","type":"boolean","jsonPath":".spec.dryRun"}"#,
    printcolumn = r#"{"name":"Next-Run","type":"date","jsonPath":".status.nextRunAt"}"#,
    printcolumn = r#"{"name":"Last-Run","type":"date","jsonPath":".status.lastRunAt","priority":1}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status","description":"Spec and mandatory tags are valid"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Owed","type":"integer","jsonPath":".status.owedEvents","description":"Events not yet acknowledged by the broker"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TeardownPolicySpec {
    /// The kinds governed: `Api`, `Application`, `Subscription`, `PromotionRequest`.
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Set)]
    pub kinds: Vec<TeardownKind>,

    /// Namespaces governed, by label; all namespaces when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// Resources governed, by label; all resources of the kinds when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,

    /// When the policy runs: a five-field crontab expression, in UTC.
    #[serde(default = "default_schedule")]
    #[schemars(length(min = 9, max = 128), regex(pattern = SCHEDULE_PATTERN))]
    pub schedule: String,

    /// How long before the deletion the owner is notified, once per lead time
    /// (`resource-expiring` events).
    #[serde(default = "default_notice_lead_times")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Set)]
    pub notice_lead_times: Vec<ShortDuration>,

    /// Only report what would be notified and deleted; delete nothing.
    #[serde(default)]
    pub dry_run: bool,

    /// Most deletions in one run; the rest waits for the next run.
    #[serde(default = "default_max_deletions_per_run")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_deletions_per_run: i32,
}

fn default_schedule() -> String {
    DEFAULT_SCHEDULE.to_owned()
}

/// The default notice lead times: 48h and 24h.
pub fn default_notice_lead_times() -> Vec<ShortDuration> {
    [48, 24]
        .into_iter()
        .filter_map(ShortDuration::hours)
        .collect()
}

fn default_max_deletions_per_run() -> i32 {
    DEFAULT_MAX_DELETIONS_PER_RUN
}

impl TeardownPolicySpec {
    /// Whether the policy governs `kind`.
    pub fn governs(&self, kind: TeardownKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The lead times, longest first (the order notices go out).
    pub fn lead_times_longest_first(&self) -> Vec<ShortDuration> {
        let mut lead = self.notice_lead_times.clone();
        lead.sort_by(|a, b| b.cmp(a));
        lead.dedup_by(|a, b| a.as_secs() == b.as_secs());
        lead
    }
}

string_enum! {
    /// A kind a TeardownPolicy can govern.
    pub enum TeardownKind {
        /// `Api`.
        Api = "Api",
        /// `Application`.
        Application = "Application",
        /// `Subscription`.
        Subscription = "Subscription",
        /// `PromotionRequest`.
        PromotionRequest = "PromotionRequest",
    }
}

impl TeardownKind {
    /// The resource's plural name (`apis`, `applications`, ...).
    pub const fn plural(&self) -> &'static str {
        match self {
            TeardownKind::Api => "apis",
            TeardownKind::Application => "applications",
            TeardownKind::Subscription => "subscriptions",
            TeardownKind::PromotionRequest => "promotionrequests",
        }
    }
}

string_enum! {
    /// What happens to a scheduled resource.
    pub enum TeardownAction {
        /// The owner is notified (`resource-expiring`).
        Notify = "notify",
        /// The resource is deleted (`resource-deleted`).
        Delete = "delete",
    }
}

/// Observed state of a TeardownPolicy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TeardownPolicyStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions: `Ready`, `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ::kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// When the policy last ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<Time>,

    /// When the policy runs next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<Time>,

    /// What will be notified or deleted, and when, soonest first (at most 500 entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500))]
    pub scheduled: Vec<ScheduledTeardown>,

    /// Events owed to the broker (the outbox); cleared once acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub pending_events: Vec<PendingEvent>,

    /// How many events are owed to the broker (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub owed_events: Option<i32>,
}

/// A resource the policy will act on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledTeardown {
    /// The resource's kind.
    pub kind: TeardownKind,
    /// The resource's namespace.
    pub namespace: String,
    /// The resource's name.
    pub name: String,
    /// When it expires (`creationTimestamp + ttl`).
    pub expires_at: Time,
    /// The next action: `notify` (a lead time is reached first) or `delete`.
    pub action: TeardownAction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let spec: TeardownPolicySpec =
            serde_json::from_value(serde_json::json!({"kinds": ["Api"]})).unwrap();
        assert_eq!(spec.schedule, DEFAULT_SCHEDULE);
        assert_eq!(
            spec.notice_lead_times
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["48h", "24h"]
        );
        assert!(!spec.dry_run);
        assert_eq!(spec.max_deletions_per_run, 50);
        assert!(spec.governs(TeardownKind::Api) && !spec.governs(TeardownKind::Subscription));
    }

    #[test]
    fn lead_times_longest_first_without_duplicates() {
        let spec: TeardownPolicySpec = serde_json::from_value(serde_json::json!({
            "kinds": ["Api"], "noticeLeadTimes": ["24h", "2d", "90m", "1d"]
        }))
        .unwrap();
        let lead: Vec<String> = spec
            .lead_times_longest_first()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(lead, ["2d", "1d", "90m"]);
    }

    #[test]
    fn bad_lead_time_is_refused_on_deserialization() {
        let err = serde_json::from_value::<TeardownPolicySpec>(serde_json::json!({
            "kinds": ["Api"], "noticeLeadTimes": ["0h"]
        }))
        .unwrap_err();
        assert!(err.to_string().contains("is zero"), "{err}");
    }
}
