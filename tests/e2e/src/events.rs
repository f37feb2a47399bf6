//! Event tests' tools: a collector reading every record of an operator's topics (an
//! independent rdkafka consumer, not the operator's code), the contract checks of one record
//! (key, `ce_*` headers, topic, body valid against the committed `docs/events/` schemas), the
//! outbox as the status shows it, and a gateway/AWX simulator of the test's own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;

use crate::operator::free_port;
use crate::{bin_path, wait, workspace_root};

/// Catalogue names of the operator's topics; each is created as `<prefix><name>`.
pub const TOPICS: [&str; 17] = [
    "api-created",
    "api-updated",
    "api-deleted",
    "deploy-requests",
    "deploy-results",
    "application-created",
    "application-deleted",
    "subscription-created",
    "subscription-deleted",
    "api-key-rotated",
    "promotion-requests",
    "resource-created",
    "resource-expiring",
    "resource-deleted",
    "tag-violation",
    "audit-log",
    "notifications",
];

/// Prefix of every event type.
pub const TYPE_PREFIX: &str = "com.cab-i.apim.";

/// The Kafka `content-type` header of a structured-mode CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";

/// A topic prefix no other test uses: `e2e-<8 hex>.`.
pub fn unique_prefix() -> String {
    format!("e2e-{}.", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// The catalogue topic of an event type (`com.cab-i.apim.api.created` -> `api-created`), per
/// `docs/events/README.md`.
pub fn topic_for_type(event_type: &str) -> Option<&'static str> {
    Some(match event_type.strip_prefix(TYPE_PREFIX)? {
        "api.created" => "api-created",
        "api.updated" => "api-updated",
        "api.deleted" => "api-deleted",
        "api.deploy-requested" => "deploy-requests",
        "api.deploy-completed" => "deploy-results",
        "application.created" => "application-created",
        "application.deleted" => "application-deleted",
        "subscription.created" => "subscription-created",
        "subscription.deleted" => "subscription-deleted",
        "application.api-key-rotated" => "api-key-rotated",
        "promotion.request-created"
        | "promotion.request-approved"
        | "promotion.request-rejected"
        | "promotion.deployment-succeeded"
        | "promotion.deployment-failed" => "promotion-requests",
        "resource.created" => "resource-created",
        "resource.expiring" => "resource-expiring",
        "resource.deleted" => "resource-deleted",
        "resource.tag-violation" => "tag-violation",
        "audit.recorded" => "audit-log",
        "notification.requested" => "notifications",
        _ => return None,
    })
}

/// The `APIM_*` settings that make the operator publish on `brokers` under `prefix`.
pub fn operator_env(brokers: &str, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("APIM_KAFKA_BROKERS", brokers.to_owned()),
        ("APIM_KAFKA_TOPIC_PREFIX", prefix.to_owned()),
        ("APIM_EVENTS_ENABLED", "true".to_owned()),
    ]
}

/// One record read back from the broker.
#[derive(Clone, Debug)]
pub struct EventRecord {
    /// Full topic name (prefix included).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record key (UTF-8).
    pub key: Option<String>,
    /// Headers, values as UTF-8.
    pub headers: BTreeMap<String, String>,
    /// The value as received.
    pub value: String,
    /// The value parsed (`Null` when it is not JSON).
    pub json: Value,
    /// The record's Kafka timestamp (ms), when it has one.
    pub timestamp_ms: Option<i64>,
    /// When this consumer read it.
    pub received: Instant,
}

impl EventRecord {
    /// A string attribute of the CloudEvent.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }
    /// `id`.
    pub fn id(&self) -> &str {
        self.attr("id").unwrap_or_default()
    }
    /// `type`.
    pub fn event_type(&self) -> &str {
        self.attr("type").unwrap_or_default()
    }
    /// `type` without `com.cab-i.apim.` (e.g. `api.created`).
    pub fn short_type(&self) -> &str {
        let t = self.event_type();
        t.strip_prefix(TYPE_PREFIX).unwrap_or(t)
    }
    /// `subject` (`namespace/name`).
    pub fn subject(&self) -> &str {
        self.attr("subject").unwrap_or_default()
    }
    /// `resourceuid`.
    pub fn resource_uid(&self) -> &str {
        self.attr("resourceuid").unwrap_or_default()
    }
    /// `time`, parsed.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(self.attr("time")?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
    /// `data`.
    pub fn data(&self) -> &Value {
        self.json.get("data").unwrap_or(&Value::Null)
    }
    /// The topic without the test's prefix.
    pub fn catalogue_topic<'a>(&'a self, prefix: &str) -> &'a str {
        self.topic.strip_prefix(prefix).unwrap_or(&self.topic)
    }
    /// A one-line description for failure messages.
    pub fn describe(&self) -> String {
        let extra = ["environment", "action", "result"]
            .iter()
            .filter_map(|k| Some(format!(" {k}={}", self.data().get(*k)?.as_str()?)))
            .collect::<String>();
        format!(
            "{} {}{extra} id={} ({}[{}]@{})",
            self.short_type(),
            self.subject(),
            self.id(),
            self.topic,
            self.partition,
            self.offset
        )
    }
}

/// Counts of records by short type, for messages.
pub fn summary(records: &[EventRecord]) -> String {
    let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        *by_type.entry(r.short_type()).or_default() += 1;
    }
    format!("{} records {by_type:?}", records.len())
}

/// The records about one resource (by `subject`), in the order they were read.
pub fn about<'a>(records: &'a [EventRecord], subject: &str) -> Vec<&'a EventRecord> {
    records.iter().filter(|r| r.subject() == subject).collect()
}

#[derive(Default)]
struct Collected {
    records: Vec<EventRecord>,
    seen: HashSet<(String, i32, i64)>,
    /// Next offset to read per partition (last read + 1).
    next: HashMap<(String, i32), i64>,
    errors: Vec<String>,
}

/// Reads every record of the 17 topics of one prefix, from the beginning, on a thread of its
/// own, until dropped. Partitions are assigned (no consumer group), so a broker outage only
/// pauses it; a record is kept once per (topic, partition, offset).
pub struct EventCollector {
    brokers: String,
    prefix: String,
    partitions: Vec<(String, i32)>,
    state: Arc<Mutex<Collected>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn client_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", format!("e2e-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("allow.auto.create.topics", "false")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .set("reconnect.backoff.max.ms", "1000")
        .set("fetch.wait.max.ms", "100");
    c
}

/// Partitions of each of `topics` that exist on the broker (topic missing: absent).
fn partitions_of(brokers: &str, topics: &[String]) -> Result<BTreeMap<String, i32>, String> {
    let consumer: BaseConsumer = client_config(brokers)
        .create()
        .map_err(|e| format!("creating a consumer: {e}"))?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .map_err(|e| format!("metadata from {brokers}: {e}"))?;
    Ok(md
        .topics()
        .iter()
        .filter(|t| topics.iter().any(|n| n == t.name()) && t.error().is_none())
        .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
        .collect())
}

impl EventCollector {
    /// Waits (up to `timeout`) until the operator has created the 17 topics `<prefix><name>`
    /// on `brokers`, then reads all their partitions from the beginning.
    pub async fn start(brokers: &str, prefix: &str, timeout: Duration) -> EventCollector {
        let names: Vec<String> = TOPICS.iter().map(|t| format!("{prefix}{t}")).collect();
        let b = brokers.to_owned();
        let last_missing = Arc::new(Mutex::new(Vec::<String>::new()));
        let lm = last_missing.clone();
        let found = wait::until(
            timeout,
            &format!("the operator to create the 17 topics {prefix}* on {brokers}"),
            || {
                let b = b.clone();
                let names = names.clone();
                let lm = lm.clone();
                async move {
                    let names2 = names.clone();
                    let found = tokio::task::spawn_blocking(move || partitions_of(&b, &names2))
                        .await
                        .ok()?
                        .ok()?;
                    let missing: Vec<String> = names
                        .iter()
                        .filter(|n| !found.contains_key(*n))
                        .cloned()
                        .collect();
                    let done = missing.is_empty();
                    *lm.lock().expect("lock") = missing;
                    done.then_some(found)
                }
            },
        )
        .await;
        let mut partitions = Vec::new();
        let mut tpl = TopicPartitionList::new();
        for (topic, count) in &found {
            for p in 0..*count {
                tpl.add_partition_offset(topic, p, Offset::Beginning)
                    .expect("partition offset");
                partitions.push((topic.clone(), p));
            }
        }
        let consumer: BaseConsumer = client_config(brokers).create().expect("consumer");
        consumer.assign(&tpl).expect("assign partitions");
        let state = Arc::new(Mutex::new(Collected::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                        continue;
                    };
                    let mut s = state.lock().expect("collector lock");
                    match result {
                        Ok(m) => {
                            let id = (m.topic().to_owned(), m.partition(), m.offset());
                            if !s.seen.insert(id.clone()) {
                                continue;
                            }
                            s.next.insert((id.0, id.1), m.offset() + 1);
                            let mut headers = BTreeMap::new();
                            if let Some(h) = m.headers() {
                                for i in 0..h.count() {
                                    let header = h.get(i);
                                    headers.insert(
                                        header.key.to_owned(),
                                        String::from_utf8_lossy(header.value.unwrap_or_default())
                                            .into_owned(),
                                    );
                                }
                            }
                            let value = String::from_utf8_lossy(m.payload().unwrap_or_default())
                                .into_owned();
                            s.records.push(EventRecord {
                                topic: m.topic().to_owned(),
                                partition: m.partition(),
                                offset: m.offset(),
                                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                                headers,
                                json: serde_json::from_str(&value).unwrap_or(Value::Null),
                                value,
                                timestamp_ms: m.timestamp().to_millis(),
                                received: Instant::now(),
                            });
                        }
                        Err(e) => {
                            if s.errors.len() < 100 {
                                s.errors.push(e.to_string());
                            }
                        }
                    }
                }
            })
        };
        EventCollector {
            brokers: brokers.to_owned(),
            prefix: prefix.to_owned(),
            partitions,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The test's topic prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Every record read so far, in the order read.
    pub fn records(&self) -> Vec<EventRecord> {
        self.state.lock().expect("collector lock").records.clone()
    }

    /// Consumer errors seen so far (broker down, ...), at most 100.
    pub fn errors(&self) -> Vec<String> {
        self.state.lock().expect("collector lock").errors.clone()
    }

    /// Waits until `check` holds on the records read so far, then returns its value; panics
    /// after `timeout` with `what` and a summary of what was read.
    pub async fn until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&[EventRecord]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let s = self.state.lock().expect("collector lock");
                if let Some(v) = check(&s.records) {
                    return v;
                }
            }
            if Instant::now() >= deadline {
                let records = self.records();
                let listing: Vec<String> = records.iter().map(EventRecord::describe).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; read {} on {}*:\n  {}",
                    summary(&records),
                    self.prefix,
                    listing.join("\n  ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until everything on the broker now has been read: each partition's high
    /// watermark, fetched at the call, is reached. With every outbox empty, nothing more of
    /// those events can come, so this makes "no duplicate" a finite check.
    pub async fn caught_up(&self, timeout: Duration) {
        let brokers = self.brokers.clone();
        let partitions = self.partitions.clone();
        let high: Vec<((String, i32), i64)> = wait::until(
            timeout,
            &format!("the high watermarks of {}* from {brokers}", self.prefix),
            || {
                let brokers = brokers.clone();
                let partitions = partitions.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        let c: BaseConsumer = client_config(&brokers).create().ok()?;
                        partitions
                            .into_iter()
                            .map(|(t, p)| {
                                c.fetch_watermarks(&t, p, Duration::from_secs(5))
                                    .ok()
                                    .map(|(_, h)| ((t, p), h))
                            })
                            .collect::<Option<Vec<_>>>()
                    })
                    .await
                    .ok()
                    .flatten()
                }
            },
        )
        .await;
        let state = self.state.clone();
        wait::until(
            timeout,
            &format!(
                "the collector to read {}* up to the high watermarks",
                self.prefix
            ),
            || {
                let s = state.lock().expect("collector lock");
                let behind = high
                    .iter()
                    .any(|(tp, h)| *h > 0 && s.next.get(tp).copied().unwrap_or(0) < *h);
                std::future::ready((!behind).then_some(()))
            },
        )
        .await;
    }
}

impl Drop for EventCollector {
    /// Stops reading and deletes the test's topics (the lab's broker keeps no test debris).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let admin: Result<AdminClient<DefaultClientContext>, _> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create();
        if let Ok(admin) = admin {
            let names: Vec<String> = TOPICS
                .iter()
                .map(|t| format!("{}{t}", self.prefix))
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            // The admin client polls on its own thread: no runtime needed.
            let _ = futures::executor::block_on(admin.delete_topics(&names, &options));
        }
    }
}

/// The committed JSON Schemas of `docs/events/`: the envelope and one per type's `data`.
pub struct Schemas {
    envelope: jsonschema::Validator,
    data: HashMap<String, jsonschema::Validator>,
}

fn compile(path: &Path) -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{} does not compile: {e}", path.display()))
}

impl Schemas {
    /// Loads `docs/events/envelope.schema.json` and `docs/events/data/*.schema.json`.
    pub fn load() -> Schemas {
        let dir = workspace_root().join("docs/events");
        let envelope = compile(&dir.join("envelope.schema.json"));
        let mut data = HashMap::new();
        for entry in std::fs::read_dir(dir.join("data"))
            .unwrap_or_else(|e| panic!("reading {}/data: {e}", dir.display()))
        {
            let path = entry.expect("dir entry").path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".schema.json"))
            else {
                continue;
            };
            data.insert(name.to_owned(), compile(&path));
        }
        assert!(!data.is_empty(), "no data schema in {}/data", dir.display());
        Schemas { envelope, data }
    }

    /// The schemas, loaded once per test binary.
    pub fn get() -> &'static Schemas {
        static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
        SCHEMAS.get_or_init(Schemas::load)
    }

    /// Why `event` is not valid: against the envelope, and its `data` against the schema of
    /// its type. Empty when valid.
    pub fn errors(&self, event: &Value) -> Vec<String> {
        let mut out: Vec<String> = self
            .envelope
            .iter_errors(event)
            .map(|e| format!("envelope: {e} at {}", e.instance_path()))
            .collect();
        let t = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match self.data.get(t.strip_prefix(TYPE_PREFIX).unwrap_or(t)) {
            Some(v) => {
                let data = event.get("data").cloned().unwrap_or(Value::Null);
                out.extend(
                    v.iter_errors(&data)
                        .map(|e| format!("data: {e} at {}", e.instance_path())),
                );
            }
            None => out.push(format!("no data schema for type {t:?}")),
        }
        out
    }
}

/// Header value of a scalar attribute (`ce_<attribute>`): strings as they are, numbers and
/// booleans in JSON.
fn header_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What is wrong with one record against the contract: a body valid against the committed
/// schemas, on the topic of its type under `prefix`, key `resourceuid` (on `audit-log` the
/// event id), a `ce_<attribute>` header equal to each scalar attribute and none other, and
/// `content-type: application/cloudevents+json`. Empty when it is right.
pub fn contract_problems(record: &EventRecord, prefix: &str) -> Vec<String> {
    let mut p = Vec::new();
    let Some(doc) = record.json.as_object() else {
        return vec![format!("value is not a JSON object: {:?}", record.value)];
    };
    p.extend(Schemas::get().errors(&record.json));
    match topic_for_type(record.event_type()) {
        Some(t) if record.topic == format!("{prefix}{t}") => {}
        Some(t) => p.push(format!(
            "type {} on topic {}, expected {prefix}{t}",
            record.event_type(),
            record.topic
        )),
        None => p.push(format!("unknown type {:?}", record.event_type())),
    }
    let expected_key = if record.catalogue_topic(prefix) == "audit-log" {
        record.id()
    } else {
        record.resource_uid()
    };
    if record.key.as_deref() != Some(expected_key) || expected_key.is_empty() {
        p.push(format!(
            "key {:?}, expected {expected_key:?}",
            record.key.as_deref()
        ));
    }
    if record.headers.get("content-type").map(String::as_str) != Some(CONTENT_TYPE) {
        p.push(format!(
            "header content-type {:?}, expected {CONTENT_TYPE}",
            record.headers.get("content-type")
        ));
    }
    for (name, value) in doc {
        if name == "data" {
            continue;
        }
        let Some(expected) = header_value(value) else {
            continue;
        };
        let header = format!("ce_{name}");
        if record.headers.get(&header) != Some(&expected) {
            p.push(format!(
                "header {header} {:?}, expected {expected:?}",
                record.headers.get(&header)
            ));
        }
    }
    for header in record.headers.keys() {
        if let Some(attr) = header.strip_prefix("ce_")
            && doc.get(attr).and_then(header_value).is_none()
        {
            p.push(format!(
                "header {header} names no scalar attribute of the body"
            ));
        }
    }
    for required in ["ce_id", "ce_type", "ce_source", "ce_specversion", "ce_time"] {
        if !record.headers.contains_key(required) {
            p.push(format!("header {required} missing"));
        }
    }
    p
}

/// Panics listing every record that breaks the contract ([`contract_problems`]).
pub fn assert_contract(records: &[EventRecord], prefix: &str) {
    let bad: Vec<String> = records
        .iter()
        .filter_map(|r| {
            let p = contract_problems(r, prefix);
            (!p.is_empty()).then(|| format!("{}:\n    {}", r.describe(), p.join("\n    ")))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} records break the event contract:\n  {}",
        bad.len(),
        records.len(),
        bad.join("\n  ")
    );
}

/// The outbox of an object as its status shows it: `status.pendingEvents` and
/// `status.owedEvents` (read from JSON, so it does not depend on the typed status).
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    /// Entries of `status.pendingEvents`.
    pub pending: Vec<Value>,
    /// `status.owedEvents`, when present.
    pub owed: Option<i64>,
}

impl Outbox {
    /// From a whole object (`DynamicObject` data, or any serialized resource).
    pub fn of(object: &Value) -> Outbox {
        let status = object.get("status").cloned().unwrap_or(Value::Null);
        Outbox {
            pending: status
                .get("pendingEvents")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            owed: status.get("owedEvents").and_then(Value::as_i64),
        }
    }

    /// Nothing owed: no pending entry and `owedEvents` absent or 0.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.owed.unwrap_or(0) == 0
    }

    /// The ids of the pending entries.
    pub fn ids(&self) -> Vec<String> {
        self.pending
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }
}

/// `apim-sim` (gateway and AWX simulators) as a child process on a free port; killed on drop.
pub struct Sim {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Sim {
    /// Starts it for the dev and staging gateways, with extra arguments (e.g.
    /// `--playbook-dir`), and waits until it answers.
    pub async fn start(extra: &[&str]) -> Sim {
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("apim-sim-{port}.log")))
            .expect("sim log");
        let child = Command::new(bin_path("apim-sim"))
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--environments",
                "dev,staging",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting apim-sim (cargo build -p apim-sim)");
        let sim = Sim { child, port };
        wait::until(Duration::from_secs(20), "apim-sim to answer", || async {
            crate::operator::http_get(port, "/_sim/health")
                .await
                .map(|_| ())
        })
        .await;
        sim
    }

    /// Base URL of one environment's simulated gateway.
    pub fn gateway_url(&self, env: &str) -> String {
        format!("http://127.0.0.1:{}/gateways/{env}", self.port)
    }

    /// Base URL of the simulated AWX.
    pub fn awx_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The settings that point the operator at this simulator (dev and staging gateways with
    /// inline credentials, AWX with a token).
    pub fn operator_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("APIM_GATEWAY_URL_DEV", self.gateway_url("dev")),
            ("APIM_GATEWAY_URL_STAGING", self.gateway_url("staging")),
            ("APIM_GATEWAY_USERNAME", "Administrator".into()),
            ("APIM_GATEWAY_PASSWORD", "manage".into()),
            ("APIM_AWX_URL", self.awx_url()),
            ("APIM_AWX_TOKEN", "awx-token".into()),
        ]
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Borrows owned settings as the `&[(&str, &str)]` that `OperatorProcess::start` takes.
pub fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// One expected event: its short type (`api.created`) and, when given, its `data.environment`,
/// `data.action` and `resourcegeneration`.
#[derive(Clone, Debug)]
pub struct Want {
    /// Short type, e.g. `api.deploy-completed`.
    pub short_type: &'static str,
    /// `data.environment`.
    pub environment: Option<&'static str>,
    /// `data.action` (audit records).
    pub action: Option<&'static str>,
    /// `resourcegeneration`.
    pub generation: Option<i64>,
}

/// An expected event of short type `t` (see [`Want`]).
pub fn want(t: &'static str) -> Want {
    Want {
        short_type: t,
        environment: None,
        action: None,
        generation: None,
    }
}

impl Want {
    /// With `data.environment`.
    pub fn env(mut self, e: &'static str) -> Want {
        self.environment = Some(e);
        self
    }
    /// With `data.action`.
    pub fn action(mut self, a: &'static str) -> Want {
        self.action = Some(a);
        self
    }
    /// With `resourcegeneration`.
    pub fn generation(mut self, g: i64) -> Want {
        self.generation = Some(g);
        self
    }
    /// Whether `r` is such an event.
    pub fn matches(&self, r: &EventRecord) -> bool {
        r.short_type() == self.short_type
            && self
                .environment
                .is_none_or(|e| r.data().get("environment").and_then(Value::as_str) == Some(e))
            && self
                .action
                .is_none_or(|a| r.data().get("action").and_then(Value::as_str) == Some(a))
            && self
                .generation
                .is_none_or(|g| r.json.get("resourcegeneration").and_then(Value::as_i64) == Some(g))
    }
    /// For messages.
    pub fn describe(&self) -> String {
        let mut s = self.short_type.to_owned();
        if let Some(e) = self.environment {
            s.push_str(&format!(" environment={e}"));
        }
        if let Some(a) = self.action {
            s.push_str(&format!(" action={a}"));
        }
        if let Some(g) = self.generation {
            s.push_str(&format!(" generation={g}"));
        }
        s
    }
}

/// One record for each of `wants`, all distinct (the first match of each, in read order), or
/// the descriptions of the wants nothing matched.
pub fn pick<'a>(
    records: &[&'a EventRecord],
    wants: &[Want],
) -> Result<Vec<&'a EventRecord>, Vec<String>> {
    let mut used = HashSet::new();
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for w in wants {
        match records
            .iter()
            .enumerate()
            .find(|(i, r)| !used.contains(i) && w.matches(r))
        {
            Some((i, r)) => {
                used.insert(i);
                out.push(*r);
            }
            None => missing.push(w.describe()),
        }
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

/// The mandatory tags (labels and the owner annotation) on an APIM resource.
pub fn tagged(kind: &str, name: &str, spec: Value) -> Value {
    serde_json::json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": kind,
        "metadata": {
            "name": name,
            "labels": {
                "apim.cab-i.com/environment": "dev",
                "apim.cab-i.com/project": "payments",
                "apim.cab-i.com/cost-center": "cc-4711",
                "apim.cab-i.com/ttl": "7d",
                "apim.cab-i.com/auto-teardown": "true",
                "apim.cab-i.com/data-class": "internal"
            },
            "annotations": {"apim.cab-i.com/owner": "payments-team@example.com"}
        },
        "spec": spec
    })
}

/// The `kube` resource of an APIM kind (`Api`, `Application`, `Subscription`, ...), to
/// handle objects as JSON (`DynamicObject`) whatever the typed status holds.
pub fn apim_resource(kind: &str) -> kube::api::ApiResource {
    let plural = match kind {
        "Api" => "apis",
        "Application" => "applications",
        "Subscription" => "subscriptions",
        "PromotionRequest" => "promotionrequests",
        "TeardownPolicy" => "teardownpolicies",
        other => panic!("{other} is not an APIM kind"),
    };
    kube::api::ApiResource {
        group: "apim.cab-i.com".into(),
        version: "v1alpha1".into(),
        api_version: "apim.cab-i.com/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Whether an object (as JSON) is `Ready=True` for its current generation.
pub fn is_ready(object: &Value) -> bool {
    let status = &object["status"];
    let ready = status["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    ready && status["observedGeneration"] == object["metadata"]["generation"]
}

/// For failure messages: whether the operator still answers `/healthz`, and the last lines of
/// its log that are not librdkafka's.
pub async fn operator_state(op: &crate::operator::OperatorProcess) -> String {
    let answers = op.get("/healthz").await.is_some();
    let logs = op.logs();
    let tail: Vec<&str> = logs
        .lines()
        .filter(|l| !l.contains("librdkafka") && !l.contains("Event not acknowledged"))
        .collect();
    format!(
        "operator {} /healthz; log {}, last lines:\n    {}",
        if answers {
            "answers"
        } else {
            "does NOT answer"
        },
        op.log_path.display(),
        tail[tail.len().saturating_sub(8)..].join("\n    ")
    )
}

/// On drop (after the test's operator is gone, so declare it before the operator), removes
/// the finalizers of every APIM object left in a test namespace, so that the namespace's
/// deletion completes without an operator.
pub struct FinalizerSweep {
    config: kube::Config,
    namespace: String,
}

impl FinalizerSweep {
    /// For the objects of `namespace`.
    pub fn new(lab: &crate::Lab, namespace: &str) -> FinalizerSweep {
        FinalizerSweep {
            config: lab.admin_config().clone(),
            namespace: namespace.to_owned(),
        }
    }
}

impl Drop for FinalizerSweep {
    fn drop(&mut self) {
        let ns = self.namespace.clone();
        crate::lab::blocking_cleanup(self.config.clone(), |client| async move {
            use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
            for kind in ["Api", "Application", "Subscription", "PromotionRequest"] {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), &ns, &apim_resource(kind));
                let Ok(list) = api.list(&ListParams::default()).await else {
                    continue;
                };
                for o in list.items {
                    if o.metadata
                        .finalizers
                        .as_ref()
                        .is_some_and(|f| !f.is_empty())
                        && let Some(name) = o.metadata.name
                    {
                        let _ = api
                            .patch(
                                &name,
                                &PatchParams::default(),
                                &Patch::Merge(
                                    serde_json::json!({"metadata": {"finalizers": null}}),
                                ),
                            )
                            .await;
                    }
                }
            }
        });
    }
}
