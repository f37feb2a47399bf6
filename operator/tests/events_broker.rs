//! The event pipeline against a real Kafka-API broker (the lab's Apache Kafka, or Redpanda).
//!
//! The broker is `APIM_KAFKA_BROKERS` (default 127.0.0.1:9092). When it is unreachable each
//! test prints one line and returns, unless `APIM_E2E_REQUIRED=1` (CI), where it fails.
//! Records are read back with a plain rdkafka consumer, independent of the code under test,
//! and bodies are validated against the committed `docs/events/` schemas. Every test uses its
//! own topic prefix and deletes its topics at the end.

use std::collections::{BTreeMap, HashMap};
use std::net::ToSocketAddrs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apim_operator::events::config::{EventsConfig, TopicOverride};
use apim_operator::events::{
    CloudEvent, EventData, EventSink, OutgoingEvent, Publisher, ResourceRef, Topic, TopicNames,
    admin_client, deliver_owed, ensure_topics, source_for,
};
use chrono::Utc;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn brokers() -> String {
    std::env::var("APIM_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Whether the broker answers; prints one line and says skip when it does not (or panics
/// when `APIM_E2E_REQUIRED=1`).
fn broker_available(test: &str) -> bool {
    let b = brokers();
    let reachable = b.split(',').any(|addr| {
        addr.trim()
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok()
            })
    });
    if !reachable {
        if std::env::var("APIM_E2E_REQUIRED").as_deref() == Ok("1") {
            panic!("{test}: Kafka broker {b} unreachable and APIM_E2E_REQUIRED=1");
        }
        println!("{test}: skipped, Kafka broker {b} unreachable (set APIM_KAFKA_BROKERS)");
    }
    reachable
}

fn config(prefix: &str) -> EventsConfig {
    let mut c = EventsConfig {
        brokers: brokers(),
        ..EventsConfig::default()
    };
    c.topics.prefix = prefix.into();
    c.topics.replication_factor = 1;
    c.producer.delivery_timeout = Duration::from_secs(20);
    c.producer.admin_timeout = Duration::from_secs(20);
    c
}

fn unique_prefix(test: &str) -> String {
    format!("apim-test-{test}-{}.", rand::random::<u32>())
}

fn resource(i: usize) -> ResourceRef {
    ResourceRef {
        namespace: Some("team-a".into()),
        name: format!("res-{i}"),
        uid: format!("{:08x}-0000-4000-8000-{:012x}", rand::random::<u32>(), i),
        generation: Some(1),
    }
}

fn test_admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client")
}

/// Deletes the test's topics when dropped, also when the test fails.
struct DeleteTopics(Vec<String>);

impl Drop for DeleteTopics {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.0);
        // Drop cannot await: delete from a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let admin = test_admin();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let _ = admin.delete_topics(&refs, &AdminOptions::new()).await;
            });
        })
        .join();
    }
}

fn cleanup_of(names: &TopicNames) -> DeleteTopics {
    DeleteTopics(names.specs().iter().map(|s| s.name.clone()).collect())
}

/// Creates the catalogue's topics for `c`; they are deleted when the guard drops.
async fn setup_topics(c: &EventsConfig) -> (TopicNames, DeleteTopics) {
    let names = TopicNames::new(c);
    let cleanup = cleanup_of(&names);
    let admin = Arc::new(admin_client(c, None).expect("admin"));
    ensure_topics(admin, names.specs(), c.producer.admin_timeout)
        .await
        .expect("ensure topics");
    (names, cleanup)
}

/// Reads `n` records from the beginning of every partition of `topics`.
fn consume(topics: &[String], n: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("apim-test-{}", rand::random::<u32>()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let meta = consumer
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .expect("metadata");
        for p in meta.topics()[0].partitions() {
            tpl.add_partition_offset(t, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.expect("consume").detach());
        }
    }
    out
}

fn headers(m: &OwnedMessage) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(h) = m.headers() {
        for i in 0..h.count() {
            let header = h.get(i);
            out.insert(
                header.key.to_owned(),
                String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
            );
        }
    }
    out
}

fn committed_schema(rel: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/events")
        .join(rel);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema json");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_lands_on_its_topic_with_key_headers_and_a_valid_body() {
    if !broker_available("every_event_type_lands_on_its_topic") {
        return;
    }
    let c = config(&unique_prefix("types"));
    let (names, cleanup) = setup_topics(&c).await;
    let publisher = Publisher::new(&c, None).expect("publisher");
    let source = source_for("test-1");
    let mut sent = HashMap::new();
    let events: Vec<OutgoingEvent> = EventData::examples()
        .into_iter()
        .enumerate()
        .map(|(i, data)| {
            let r = resource(i);
            let e = CloudEvent::new(&source, &r, data, Utc::now())
                .with_actor("alice@cab-i.com")
                .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            let out = OutgoingEvent::encode(&e, &names).expect("encode");
            sent.insert(out.id.clone(), (e, r, out.clone()));
            out
        })
        .collect();
    let results = publisher.publish_batch(&events).await;
    for r in &results {
        assert!(r.is_ok(), "{:?}", r.as_ref().err().map(ToString::to_string));
    }

    let envelope = committed_schema("envelope.schema.json");
    let got = tokio::task::spawn_blocking({
        let all = cleanup.0.clone();
        let n = events.len();
        move || consume(&all, n, Duration::from_secs(30))
    })
    .await
    .expect("consumer task");
    assert_eq!(got.len(), events.len(), "every event read back");
    for m in &got {
        let h = headers(m);
        let id = h.get("ce_id").expect("ce_id header");
        let (event, r, out) = sent.get(id).unwrap_or_else(|| panic!("unknown id {id}"));
        let topic = names.name(event.data.topic());
        assert_eq!(m.topic(), topic, "{} on its topic", event.data.event_type());
        let want_key = if event.data.topic() == Topic::AuditLog {
            id.as_str()
        } else {
            r.uid.as_str()
        };
        assert_eq!(
            m.key(),
            Some(want_key.as_bytes()),
            "key of {}",
            event.data.event_type()
        );
        let body = m.payload().expect("payload");
        assert_eq!(
            body,
            out.payload.as_bytes(),
            "the document is sent as it is"
        );
        let doc: serde_json::Value = serde_json::from_slice(body).expect("json body");
        let errors: Vec<String> = envelope.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{} invalid against envelope.schema.json: {errors:?}",
            event.data.event_type()
        );
        let ty = doc["type"].as_str().expect("type");
        let data_schema = committed_schema(&format!(
            "data/{}.schema.json",
            ty.trim_start_matches("com.cab-i.apim.")
        ));
        assert!(
            data_schema.is_valid(&doc["data"]),
            "{ty} data invalid against its schema"
        );
        assert_eq!(
            h.get("content-type").map(String::as_str),
            Some("application/cloudevents+json")
        );
        for attr in [
            "specversion",
            "id",
            "source",
            "type",
            "time",
            "subject",
            "datacontenttype",
            "tenant",
            "actor",
            "traceparent",
            "resourceuid",
            "resourcegeneration",
        ] {
            let want = match &doc[attr] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(
                h.get(&format!("ce_{attr}")),
                Some(&want),
                "header ce_{attr} of {ty}"
            );
        }
        assert!(!h.contains_key("ce_data"));
    }
}

async fn describe(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
) -> (usize, BTreeMap<String, String>) {
    let res = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await
        .expect("describe");
    let configs = res
        .into_iter()
        .next()
        .expect("one result")
        .expect("described")
        .entries
        .into_iter()
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect();
    let meta = admin
        .inner()
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    (meta.topics()[0].partitions().len(), configs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_their_settings_and_a_mismatch_is_reported_not_changed() {
    if !broker_available("topics_are_created") {
        return;
    }
    let mut c = config(&unique_prefix("topics"));
    c.topics.overrides.insert(
        Topic::Notifications,
        TopicOverride {
            partitions: Some(2),
            ..Default::default()
        },
    );
    let names = TopicNames::new(&c);
    let mut cleanup = cleanup_of(&names);
    cleanup.0.push(format!("{}absent", names.specs()[0].name));
    let admin = test_admin();
    // An existing audit-log that differs from the catalogue in partitions, policy, retention.
    let audit = names.name(Topic::AuditLog).to_owned();
    let pre = NewTopic::new(&audit, 3, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", "86400000");
    let r = admin
        .create_topics(&[pre], &AdminOptions::new())
        .await
        .expect("create");
    assert!(r[0].is_ok(), "{r:?}");
    // Wait until the broker's metadata shows it, as for any topic that existed before.
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
        .inner()
        .fetch_metadata(Some(&audit), Duration::from_secs(5))
        .map(|m| m.topics()[0].partitions().len())
        .unwrap_or(0)
        != 3
    {
        assert!(
            Instant::now() < deadline,
            "pre-created topic never showed up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let ours = Arc::new(admin_client(&c, None).expect("admin"));
    let report = ensure_topics(Arc::clone(&ours), names.specs(), Duration::from_secs(20))
        .await
        .expect("ensure");
    assert_eq!(report.created.len(), 16, "{report:?}");
    assert_eq!(report.existing, vec![audit.clone()]);
    let mut found: Vec<(&str, &str, &str)> = report
        .mismatches
        .iter()
        .map(|m| (m.setting, m.expected.as_str(), m.actual.as_str()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("cleanup.policy", "compact,delete", "delete"),
            ("partitions", "6", "3"),
            ("retention.ms", "31536000000", "86400000")
        ]
    );
    assert!(report.mismatches.iter().all(|m| m.topic == audit));

    // The existing topic is left as it was.
    let (partitions, configs) = describe(&admin, &audit).await;
    assert_eq!(partitions, 3);
    assert_eq!(
        configs.get("cleanup.policy").map(String::as_str),
        Some("delete")
    );
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("86400000")
    );
    // Created topics carry the catalogue's settings.
    for (topic, parts, policy, retention) in [
        (Topic::DeployRequests, 6, "delete", "604800000"),
        (Topic::ApiCreated, 6, "delete", "2592000000"),
        (Topic::Notifications, 2, "delete", "2592000000"),
    ] {
        let (p, configs) = describe(&admin, names.name(topic)).await;
        assert_eq!(p, parts, "{topic}");
        assert_eq!(
            configs.get("cleanup.policy").map(String::as_str),
            Some(policy),
            "{topic}"
        );
        assert_eq!(
            configs.get("retention.ms").map(String::as_str),
            Some(retention),
            "{topic}"
        );
    }
    // With creation off, a missing topic is reported, not created.
    let mut off = names.specs().to_vec();
    off[0].name = format!("{}absent", off[0].name);
    let checked =
        apim_operator::events::check_topics(Arc::clone(&ours), &off, Duration::from_secs(20))
            .await
            .expect("check");
    assert!(checked.created.is_empty());
    assert!(
        checked
            .mismatches
            .iter()
            .any(|m| m.topic == off[0].name && m.setting == "exists"),
        "{checked:?}"
    );
    // Listing every topic (a metadata request for one topic could auto-create it).
    let listed = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert!(
        !listed.topics().iter().any(|t| t.name() == off[0].name),
        "check_topics created {}",
        off[0].name
    );
    // Idempotent: a second start creates nothing and reports the same mismatch.
    let again = ensure_topics(ours, names.specs(), Duration::from_secs(20))
        .await
        .expect("ensure again");
    assert!(again.created.is_empty(), "{again:?}");
    assert_eq!(again.existing.len(), 17);
    assert_eq!(again.mismatches.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_delivered_in_order_per_resource() {
    if !broker_available("a_batch_is_delivered_in_order") {
        return;
    }
    let c = config(&unique_prefix("order"));
    let (names, _cleanup) = setup_topics(&c).await;
    let publisher = Publisher::new(&c, None).expect("publisher");
    let resources: Vec<ResourceRef> = (0..10).map(resource).collect();
    let update = EventData::examples().remove(1);
    let mut sent: HashMap<String, Vec<String>> = HashMap::new();
    let events: Vec<OutgoingEvent> = (0..3000)
        .map(|_| {
            let r = &resources[rand::random::<u32>() as usize % resources.len()];
            let e = CloudEvent::new("apim-operator/test", r, update.clone(), Utc::now());
            let out = OutgoingEvent::encode(&e, &names).expect("encode");
            sent.entry(r.uid.clone()).or_default().push(out.id.clone());
            out
        })
        .collect();
    let results = publisher.publish_batch(&events).await;
    assert_eq!(results.len(), events.len());
    let mut offsets: HashMap<&str, (i32, i64)> = HashMap::new();
    for (e, r) in events.iter().zip(&results) {
        let d = r.as_ref().unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(d.id, e.id);
        if let Some(&(p, o)) = offsets.get(e.key.as_str()) {
            assert_eq!(p, d.partition, "one partition per resource");
            assert!(d.offset > o, "offsets grow in batch order");
        }
        offsets.insert(&e.key, (d.partition, d.offset));
    }
    let topic = vec![names.name(Topic::ApiUpdated).to_owned()];
    let got = tokio::task::spawn_blocking(move || consume(&topic, 3000, Duration::from_secs(60)))
        .await
        .expect("task");
    assert_eq!(got.len(), 3000);
    let mut read: HashMap<String, Vec<String>> = HashMap::new();
    for m in &got {
        let key = String::from_utf8_lossy(m.key().expect("key")).into_owned();
        read.entry(key)
            .or_default()
            .push(headers(m)["ce_id"].clone());
    }
    assert_eq!(
        read, sent,
        "each resource's events read back in the order sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_fails_within_the_timeout_and_the_events_stay_owed() {
    // Port 1 on loopback: nothing listens there.
    let mut c = EventsConfig {
        brokers: "127.0.0.1:1".into(),
        ..EventsConfig::default()
    };
    c.producer.delivery_timeout = Duration::from_secs(2);
    let down = Publisher::new(&c, None).expect("publisher");
    let names = TopicNames::new(&config(&unique_prefix("outage")));
    let r = resource(0);
    let events: Vec<OutgoingEvent> = EventData::examples()
        .into_iter()
        .take(3)
        .map(|d| {
            OutgoingEvent::encode(
                &CloudEvent::new("apim-operator/test", &r, d, Utc::now()),
                &names,
            )
            .expect("encode")
        })
        .collect();
    let mut outbox: Vec<crds::PendingEvent> =
        events.iter().map(OutgoingEvent::to_pending).collect();

    let started = Instant::now();
    let acked = deliver_owed(&down, &outbox).await;
    let took = started.elapsed();
    assert!(
        acked.is_empty(),
        "nothing acknowledged by a broker that is down: {acked:?}"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "waited for the delivery timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(8),
        "failed within the configured timeout: {took:?}"
    );
    let results = down.publish_batch(&events).await;
    for res in &results {
        let e = res.as_ref().expect_err("down");
        assert_eq!(e.metric_label(), "timeout", "{e}");
        assert!(e.to_string().starts_with("failed to deliver event"), "{e}");
    }
    assert_eq!(outbox.len(), 3, "the events stay owed");

    // When a broker is back, the same owed documents go out with the same ids.
    if !broker_available("an_unreachable_broker_fails (re-send part)") {
        return;
    }
    let up_config = config(&names.name(Topic::ApiCreated).replace("api-created", ""));
    let (_, _cleanup) = setup_topics(&up_config).await;
    let up = Publisher::new(&up_config, None).expect("publisher");
    let acked = deliver_owed(&up, &outbox).await;
    let ids: Vec<String> = outbox.iter().map(|p| p.id.clone()).collect();
    assert_eq!(acked, ids);
    apim_operator::events::acknowledge(&mut outbox, &acked);
    assert!(outbox.is_empty());
    let topics: Vec<String> = events.iter().map(|e| e.topic.clone()).collect();
    let got = tokio::task::spawn_blocking(move || consume(&topics, 3, Duration::from_secs(30)))
        .await
        .expect("task");
    let mut got_ids: Vec<String> = got.iter().map(|m| headers(m)["ce_id"].clone()).collect();
    let mut want = ids;
    got_ids.sort();
    want.sort();
    assert_eq!(got_ids, want, "re-sent with the recorded ids");
}
