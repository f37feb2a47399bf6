//! The topic catalogue, its configurable names, and [`ensure_topics`]: at start, create the
//! missing topics with their partitions, retention and cleanup policy, and report (never
//! change) an existing topic whose settings differ.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use super::config::EventsConfig;

const DAY: Duration = Duration::from_secs(86_400);

/// A topic of the catalogue (DESIGN.md, Events). Serialized as its catalogue name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    /// `api-created`.
    ApiCreated,
    /// `api-updated`.
    ApiUpdated,
    /// `api-deleted`.
    ApiDeleted,
    /// `deploy-requests`: consumed by the AWX worker pool (`queued` driver).
    DeployRequests,
    /// `deploy-results`.
    DeployResults,
    /// `application-created`.
    ApplicationCreated,
    /// `application-deleted`.
    ApplicationDeleted,
    /// `subscription-created`.
    SubscriptionCreated,
    /// `subscription-deleted`.
    SubscriptionDeleted,
    /// `api-key-rotated`.
    ApiKeyRotated,
    /// `promotion-requests`: the whole life cycle of a PromotionRequest.
    PromotionRequests,
    /// `resource-created`.
    ResourceCreated,
    /// `resource-expiring`.
    ResourceExpiring,
    /// `resource-deleted`.
    ResourceDeleted,
    /// `tag-violation`.
    TagViolation,
    /// `audit-log`: compacted, long retention.
    AuditLog,
    /// `notifications`.
    Notifications,
}

/// How a topic discards old records (`cleanup.policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanupPolicy {
    /// `delete`: by retention.
    Delete,
    /// `compact,delete`: compaction on the record key (it collapses re-sends of one event),
    /// and deletion after the retention.
    CompactDelete,
}

impl CleanupPolicy {
    /// The `cleanup.policy` value.
    pub const fn as_str(&self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }
}

impl Topic {
    /// Every topic, in catalogue order.
    pub const ALL: [Topic; 17] = [
        Topic::ApiCreated,
        Topic::ApiUpdated,
        Topic::ApiDeleted,
        Topic::DeployRequests,
        Topic::DeployResults,
        Topic::ApplicationCreated,
        Topic::ApplicationDeleted,
        Topic::SubscriptionCreated,
        Topic::SubscriptionDeleted,
        Topic::ApiKeyRotated,
        Topic::PromotionRequests,
        Topic::ResourceCreated,
        Topic::ResourceExpiring,
        Topic::ResourceDeleted,
        Topic::TagViolation,
        Topic::AuditLog,
        Topic::Notifications,
    ];

    /// The catalogue name (the topic name with no prefix and no override).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Topic::ApiCreated => "api-created",
            Topic::ApiUpdated => "api-updated",
            Topic::ApiDeleted => "api-deleted",
            Topic::DeployRequests => "deploy-requests",
            Topic::DeployResults => "deploy-results",
            Topic::ApplicationCreated => "application-created",
            Topic::ApplicationDeleted => "application-deleted",
            Topic::SubscriptionCreated => "subscription-created",
            Topic::SubscriptionDeleted => "subscription-deleted",
            Topic::ApiKeyRotated => "api-key-rotated",
            Topic::PromotionRequests => "promotion-requests",
            Topic::ResourceCreated => "resource-created",
            Topic::ResourceExpiring => "resource-expiring",
            Topic::ResourceDeleted => "resource-deleted",
            Topic::TagViolation => "tag-violation",
            Topic::AuditLog => "audit-log",
            Topic::Notifications => "notifications",
        }
    }

    /// Default retention: `deploy-requests` 7 days (a stale request is useless), `audit-log`
    /// 365 days, the others 30 days.
    pub const fn default_retention(&self) -> Duration {
        match self {
            Topic::DeployRequests => Duration::from_secs(7 * DAY.as_secs()),
            Topic::AuditLog => Duration::from_secs(365 * DAY.as_secs()),
            _ => Duration::from_secs(30 * DAY.as_secs()),
        }
    }

    /// Cleanup policy: `audit-log` is compacted, the others delete by retention.
    pub const fn cleanup_policy(&self) -> CleanupPolicy {
        match self {
            Topic::AuditLog => CleanupPolicy::CompactDelete,
            _ => CleanupPolicy::Delete,
        }
    }

    /// Whether the record key is the event `id` rather than the resource uid. Only
    /// `audit-log`: it is compacted, and compaction keeps one record per key, so a uid key
    /// would erase a resource's audit history; an id key collapses only re-sends of one event.
    pub const fn keyed_by_event_id(&self) -> bool {
        matches!(self, Topic::AuditLog)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a topic should look like on the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// The catalogue entry.
    pub topic: Topic,
    /// The real topic name (prefix and override applied).
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor (-1: the broker's default).
    pub replication_factor: i32,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `retention.ms`.
    pub retention: Duration,
}

impl TopicSpec {
    /// `retention.ms` as the broker shows it.
    pub fn retention_ms(&self) -> String {
        self.retention.as_millis().to_string()
    }
}

/// The resolved topic names and settings of a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicNames {
    specs: Vec<TopicSpec>,
}

impl TopicNames {
    /// Resolves every topic of the catalogue against `config.topics`.
    pub fn new(config: &EventsConfig) -> Self {
        let t = &config.topics;
        let specs = Topic::ALL
            .iter()
            .map(|&topic| {
                let o = t.overrides.get(&topic);
                TopicSpec {
                    topic,
                    name: o
                        .and_then(|o| o.name.clone())
                        .unwrap_or_else(|| format!("{}{}", t.prefix, topic.as_str())),
                    partitions: o.and_then(|o| o.partitions).unwrap_or(t.partitions),
                    replication_factor: t.replication_factor,
                    cleanup_policy: topic.cleanup_policy(),
                    retention: o
                        .and_then(|o| o.retention)
                        .unwrap_or(topic.default_retention()),
                }
            })
            .collect();
        TopicNames { specs }
    }

    /// The real name of `topic`.
    pub fn name(&self, topic: Topic) -> &str {
        &self.spec(topic).name
    }

    /// The spec of `topic`.
    pub fn spec(&self, topic: Topic) -> &TopicSpec {
        // `specs` holds Topic::ALL in order, and ALL lists every variant in declaration order.
        &self.specs[topic as usize]
    }

    /// Every topic spec, in catalogue order.
    pub fn specs(&self) -> &[TopicSpec] {
        &self.specs
    }

    /// The catalogue topic whose real name is `name`.
    pub fn topic_of(&self, name: &str) -> Option<Topic> {
        self.specs.iter().find(|s| s.name == name).map(|s| s.topic)
    }
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames::new(&EventsConfig::default())
    }
}

/// One difference between an existing topic and its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMismatch {
    /// The real topic name.
    pub topic: String,
    /// The setting (`partitions`, `cleanup.policy`, `retention.ms`).
    pub setting: &'static str,
    /// What the catalogue wants.
    pub expected: String,
    /// What the broker has.
    pub actual: String,
}

impl fmt::Display for TopicMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topic {} has {}={} but the catalogue wants {}; left unchanged",
            self.topic, self.setting, self.actual, self.expected
        )
    }
}

/// What [`ensure_topics`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicReport {
    /// Topics created now.
    pub created: Vec<String>,
    /// Topics that already existed.
    pub existing: Vec<String>,
    /// Differences of existing topics, each also logged as a warning.
    pub mismatches: Vec<TopicMismatch>,
}

/// Why the topics could not be ensured.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// Listing the broker's topics failed.
    #[error("failed to fetch topic metadata: {source}")]
    Metadata {
        /// The client error.
        source: KafkaError,
    },
    /// The metadata task died.
    #[error("failed to join the metadata task: {source}")]
    Join {
        /// The task error.
        source: tokio::task::JoinError,
    },
    /// Creating topics failed as a whole.
    #[error("failed to create topics: {source}")]
    Create {
        /// The client error.
        source: KafkaError,
    },
    /// The broker refused to create one topic.
    #[error("failed to create topic {topic}: {code}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// Describing the existing topics' configuration failed.
    #[error("failed to describe topic configs: {source}")]
    Describe {
        /// The client error.
        source: KafkaError,
    },
}

/// Compares an existing topic with its spec (pure): partitions, `cleanup.policy` (order of the
/// policies ignored) and `retention.ms`. A missing config value is not a mismatch.
pub fn compare(
    spec: &TopicSpec,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> Vec<TopicMismatch> {
    let mut out = Vec::new();
    let mut push = |setting, expected: String, actual: String| {
        out.push(TopicMismatch {
            topic: spec.name.clone(),
            setting,
            expected,
            actual,
        })
    };
    if partitions != spec.partitions {
        push(
            "partitions",
            spec.partitions.to_string(),
            partitions.to_string(),
        );
    }
    if let Some(actual) = configs.get("cleanup.policy") {
        let norm = |s: &str| {
            s.split(',')
                .map(|p| p.trim().to_owned())
                .collect::<BTreeSet<_>>()
        };
        if norm(actual) != norm(spec.cleanup_policy.as_str()) {
            push(
                "cleanup.policy",
                spec.cleanup_policy.as_str().into(),
                actual.clone(),
            );
        }
    }
    if let Some(actual) = configs.get("retention.ms")
        && actual.trim() != spec.retention_ms()
    {
        push("retention.ms", spec.retention_ms(), actual.clone());
    }
    out
}

/// Partition count of every topic on the broker.
async fn fetch_partitions<C: ClientContext + 'static>(
    admin: Arc<AdminClient<C>>,
    timeout: Duration,
) -> Result<BTreeMap<String, i32>, TopicError> {
    // fetch_metadata blocks the calling thread: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        admin.inner().fetch_metadata(None, timeout).map(|m| {
            m.topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| {
                    (
                        t.name().to_owned(),
                        i32::try_from(t.partitions().len()).unwrap_or(i32::MAX),
                    )
                })
                .collect()
        })
    })
    .await
    .map_err(|source| TopicError::Join { source })?
    .map_err(|source| TopicError::Metadata { source })
}

/// Creates the missing topics of `specs` and checks the existing ones; logs each creation
/// and each mismatch (a warning naming the topic and the difference). Never alters an
/// existing topic.
pub async fn ensure_topics<C: ClientContext + 'static>(
    admin: Arc<AdminClient<C>>,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<TopicReport, TopicError> {
    reconcile_topics(admin, specs, timeout, true).await
}

/// Like [`ensure_topics`] but creates nothing (`events.topics.create: false`): a missing
/// topic is a mismatch (`exists`), logged as a warning.
pub async fn check_topics<C: ClientContext + 'static>(
    admin: Arc<AdminClient<C>>,
    specs: &[TopicSpec],
    timeout: Duration,
) -> Result<TopicReport, TopicError> {
    reconcile_topics(admin, specs, timeout, false).await
}

async fn reconcile_topics<C: ClientContext + 'static>(
    admin: Arc<AdminClient<C>>,
    specs: &[TopicSpec],
    timeout: Duration,
    create: bool,
) -> Result<TopicReport, TopicError> {
    let mut partitions = fetch_partitions(Arc::clone(&admin), timeout).await?;

    let opts = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let mut report = TopicReport::default();
    let missing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| !partitions.contains_key(&s.name))
        .collect();
    let mut raced = BTreeSet::new();
    if !create {
        for s in &missing {
            let m = TopicMismatch {
                topic: s.name.clone(),
                setting: "exists",
                expected: "true".into(),
                actual: "false".into(),
            };
            tracing::warn!(topic = %m.topic, "Topic is missing and topic creation is off");
            report.mismatches.push(m);
        }
    } else if !missing.is_empty() {
        let retention: Vec<String> = missing.iter().map(|s| s.retention_ms()).collect();
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .zip(&retention)
            .map(|(s, r)| {
                NewTopic::new(
                    &s.name,
                    s.partitions,
                    TopicReplication::Fixed(s.replication_factor),
                )
                .set("cleanup.policy", s.cleanup_policy.as_str())
                .set("retention.ms", r)
            })
            .collect();
        for result in admin
            .create_topics(&new, &opts)
            .await
            .map_err(|source| TopicError::Create { source })?
        {
            match result {
                Ok(name) => {
                    if let Some(s) = missing.iter().find(|s| s.name == name) {
                        tracing::info!(
                            topic = %name,
                            partitions = s.partitions,
                            cleanup_policy = s.cleanup_policy.as_str(),
                            retention_ms = %s.retention_ms(),
                            "Created topic"
                        );
                    }
                    report.created.push(name);
                }
                // Another replica created it between our metadata read and now.
                Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    raced.insert(name);
                }
                Err((topic, code)) => return Err(TopicError::CreateTopic { topic, code }),
            }
        }
    }

    if !raced.is_empty() {
        // Created by someone else since our first read: read their partitions again.
        partitions = fetch_partitions(Arc::clone(&admin), timeout).await?;
    }
    let existing: Vec<&TopicSpec> = specs
        .iter()
        .filter(|s| partitions.contains_key(&s.name) || raced.contains(&s.name))
        .collect();
    if existing.is_empty() {
        return Ok(report);
    }
    let resources: Vec<ResourceSpecifier<'_>> = existing
        .iter()
        .map(|s| ResourceSpecifier::Topic(&s.name))
        .collect();
    let described = admin
        .describe_configs(&resources, &opts)
        .await
        .map_err(|source| TopicError::Describe { source })?;
    for (spec, result) in existing.iter().zip(described) {
        report.existing.push(spec.name.clone());
        let configs: BTreeMap<String, String> = match result {
            Ok(resource) => resource
                .entries
                .into_iter()
                .filter_map(|e| e.value.map(|v| (e.name, v)))
                .collect(),
            Err(code) => {
                tracing::warn!(topic = %spec.name, error = %code, "Could not describe topic config; not checked");
                BTreeMap::new()
            }
        };
        // Still not in the metadata (just created elsewhere): its partitions are not checked.
        let count = partitions
            .get(&spec.name)
            .copied()
            .unwrap_or(spec.partitions);
        for m in compare(spec, count, &configs) {
            tracing::warn!(
                topic = %m.topic,
                setting = m.setting,
                expected = %m.expected,
                actual = %m.actual,
                "Topic differs from the catalogue; left unchanged"
            );
            report.mismatches.push(m);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::config::TopicOverride;

    #[test]
    fn catalogue_names_serde_and_index_agree() {
        assert_eq!(Topic::ALL.len(), 17);
        for (i, t) in Topic::ALL.iter().enumerate() {
            assert_eq!(*t as usize, i, "ALL is in declaration order");
            assert_eq!(serde_json::to_value(t).expect("serialize"), t.as_str());
        }
        let names = TopicNames::default();
        assert_eq!(names.name(Topic::AuditLog), "audit-log");
        assert_eq!(
            names.topic_of("deploy-requests"),
            Some(Topic::DeployRequests)
        );
        assert_eq!(names.spec(Topic::DeployRequests).retention, 7 * DAY);
        assert_eq!(names.spec(Topic::ApiCreated).retention, 30 * DAY);
        assert_eq!(
            names.spec(Topic::AuditLog).cleanup_policy,
            CleanupPolicy::CompactDelete
        );
        assert_eq!(names.spec(Topic::ApiCreated).partitions, 6);
    }

    #[test]
    fn prefix_and_overrides_apply() {
        let mut c = EventsConfig::default();
        c.topics.prefix = "apim.".into();
        c.topics.overrides.insert(
            Topic::AuditLog,
            TopicOverride {
                name: Some("audit".into()),
                partitions: Some(3),
                retention: Some(DAY),
            },
        );
        let names = TopicNames::new(&c);
        assert_eq!(names.name(Topic::ApiCreated), "apim.api-created");
        assert_eq!(names.name(Topic::AuditLog), "audit");
        assert_eq!(names.spec(Topic::AuditLog).partitions, 3);
        assert_eq!(names.spec(Topic::AuditLog).retention_ms(), "86400000");
    }

    #[test]
    fn compare_reports_each_difference_and_ignores_policy_order() {
        let names = TopicNames::default();
        let spec = names.spec(Topic::AuditLog);
        let ok = BTreeMap::from([
            ("cleanup.policy".to_owned(), "delete,compact".to_owned()),
            ("retention.ms".to_owned(), spec.retention_ms()),
        ]);
        assert_eq!(compare(spec, 6, &ok), vec![]);
        let bad = BTreeMap::from([
            ("cleanup.policy".to_owned(), "delete".to_owned()),
            ("retention.ms".to_owned(), "604800000".to_owned()),
        ]);
        let m = compare(spec, 3, &bad);
        let settings: Vec<_> = m.iter().map(|m| m.setting).collect();
        assert_eq!(settings, ["partitions", "cleanup.policy", "retention.ms"]);
        assert_eq!(
            m[0].to_string(),
            "topic audit-log has partitions=3 but the catalogue wants 6; left unchanged"
        );
    }
}
