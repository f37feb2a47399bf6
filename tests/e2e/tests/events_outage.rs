//! No event is lost when the broker is down or the operator crashes: the outbox in each
//! resource's status. Runs against a disposable broker (`hack/kafka-instance`), never the
//! lab's shared one, with its own `apim-sim` and `apim-operator`.
//!
//! - a two-minute outage while 50 Apis are created and then changed: they become Ready anyway
//!   with their events owed in `status`; once the broker is back every event arrives exactly
//!   once, in order per resource, and an Api deleted during the outage keeps its finalizer
//!   until its deletion events are out;
//! - the operator SIGKILLed while events are owed and being published, then restarted: none
//!   missing, and a duplicate is the same event (same id, same bytes).
//!
//! Needs `cargo build --bins` first.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use e2e::events::{
    EventCollector, EventRecord, FinalizerSweep, Outbox, Sim, apim_resource, assert_contract,
    env_refs, is_ready, operator_env, operator_state, summary, tagged, unique_prefix,
};
use e2e::operator::OperatorProcess;
use e2e::{DisposableBroker, Lab, TestNamespace, crd_install, lab_or_skip, wait};
use futures::future::join_all;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const DOC_30: &str = "openapi: 3.0.3\ninfo: {title: Payments, version: 1.0.0}\npaths:\n  /payments:\n    get:\n      responses:\n        '200': {description: ok}\n";

/// Events of one Api with stages [dev, staging] at creation, and at each spec change.
const CREATION_EVENTS: usize = 7;
const UPDATE_EVENTS: usize = 6;

fn api_object(name: &str) -> DynamicObject {
    serde_json::from_value(tagged(
        "Api",
        name,
        json!({
            "displayName": format!("Api {name}"), "version": "1.0.0",
            "backendUrl": format!("https://{name}.internal.example.com/v1"),
            "definition": {"inline": DOC_30}, "stages": ["dev", "staging"]
        }),
    ))
    .expect("an Api")
}

fn start_operator(
    lab: &Lab,
    ns: &TestNamespace,
    lease: &str,
    sim: &Sim,
    broker: &DisposableBroker,
    prefix: &str,
) -> OperatorProcess {
    let mut env = sim.operator_env();
    env.extend(operator_env(&broker.brokers(), prefix));
    env.push(("APIM_RESYNC_INTERVAL", "5m".into()));
    // A killed leader's Lease is taken over after this long.
    env.push(("APIM_LEASE_DURATION_SECONDS", "10".into()));
    OperatorProcess::start(lab, ns.name(), lease, &env_refs(&env))
}

/// Every Api of the namespace, as JSON, by name.
async fn list(apis: &Api<DynamicObject>) -> Option<BTreeMap<String, Value>> {
    let l = apis.list(&ListParams::default()).await.ok()?;
    Some(
        l.items
            .into_iter()
            .map(|o| {
                let v = serde_json::to_value(&o).expect("json");
                (o.metadata.name.unwrap_or_default(), v)
            })
            .collect(),
    )
}

/// The "fact" an event records for an Api: type, environment, action and generation. Each
/// fact of a resource must have exactly one event id.
fn fact(r: &EventRecord) -> String {
    format!(
        "{} env={} action={} gen={}",
        r.short_type(),
        r.data()["environment"].as_str().unwrap_or("-"),
        r.data()["action"].as_str().unwrap_or("-"),
        r.json["resourcegeneration"]
    )
}

fn expected_facts(generations: &[i64]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for g in generations {
        let mut add = |t: &str, env: &str, action: &str| {
            out.insert(format!("{t} env={env} action={action} gen={g}"));
        };
        if *g == 1 {
            add("resource.created", "-", "-");
            add("api.created", "-", "-");
            add("audit.recorded", "-", "create");
        } else {
            add("api.updated", "-", "-");
            add("audit.recorded", "-", "update");
        }
        for env in ["dev", "staging"] {
            add("api.deploy-requested", env, "-");
            add("api.deploy-completed", env, "-");
        }
    }
    out
}

/// Per resource, per fact, the distinct ids; and the records of each id.
struct Tally<'a> {
    facts: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    by_id: BTreeMap<String, Vec<&'a EventRecord>>,
}

fn tally<'a>(records: &'a [EventRecord], subjects: &BTreeSet<String>) -> Tally<'a> {
    let mut t = Tally {
        facts: BTreeMap::new(),
        by_id: BTreeMap::new(),
    };
    for r in records.iter().filter(|r| subjects.contains(r.subject())) {
        t.facts
            .entry(r.subject().to_owned())
            .or_default()
            .entry(fact(r))
            .or_default()
            .insert(r.id().to_owned());
        t.by_id.entry(r.id().to_owned()).or_default().push(r);
    }
    t
}

/// Every expected fact of every subject has one id, and there is no other fact.
fn assert_facts(t: &Tally, subjects: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let mut problems = Vec::new();
    for s in subjects {
        let facts = t.facts.get(s).cloned().unwrap_or_default();
        let have: BTreeSet<String> = facts.keys().cloned().collect();
        let missing: Vec<&String> = expected.difference(&have).collect();
        let extra: Vec<&String> = have.difference(expected).collect();
        if !missing.is_empty() {
            problems.push(format!("{s}: missing {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!("{s}: unexpected {extra:?}"));
        }
        for (f, ids) in &facts {
            if ids.len() > 1 {
                problems.push(format!(
                    "{s}: {f} under {} different ids {ids:?}",
                    ids.len()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// Per resource, order: in each partition, a resource's records (by offset) never go back
/// in `time` or generation; every event of a generation precedes every event of the next;
/// a deployment's request precedes its completion.
fn assert_ordered(records: &[EventRecord], subjects: &BTreeSet<String>) {
    let mut problems = Vec::new();
    let mut by_partition: BTreeMap<(String, i32, String), Vec<&EventRecord>> = BTreeMap::new();
    let mut by_subject: BTreeMap<&str, Vec<&EventRecord>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for r in records.iter().filter(|r| subjects.contains(r.subject())) {
        if !seen.insert(r.id()) {
            continue; // a re-send: the first copy is the one in order
        }
        by_partition
            .entry((r.topic.clone(), r.partition, r.subject().to_owned()))
            .or_default()
            .push(r);
        by_subject.entry(r.subject()).or_default().push(r);
    }
    for ((topic, partition, subject), mut rs) in by_partition {
        rs.sort_by_key(|r| r.offset);
        for w in rs.windows(2) {
            let (a, b) = (w[0], w[1]);
            let generation = |r: &EventRecord| r.json["resourcegeneration"].as_i64();
            if b.time() < a.time() || generation(b) < generation(a) {
                problems.push(format!(
                    "{subject} on {topic}[{partition}]: {} (offset {}) before {} (offset {})",
                    a.describe(),
                    a.offset,
                    b.describe(),
                    b.offset
                ));
            }
        }
    }
    for (subject, rs) in by_subject {
        let generations: BTreeSet<i64> = rs
            .iter()
            .filter_map(|r| r.json["resourcegeneration"].as_i64())
            .collect();
        let gens: Vec<i64> = generations.into_iter().collect();
        for g in gens.windows(2) {
            let last = rs
                .iter()
                .filter(|r| r.json["resourcegeneration"] == g[0])
                .filter_map(|r| r.time())
                .max();
            let first = rs
                .iter()
                .filter(|r| r.json["resourcegeneration"] == g[1])
                .filter_map(|r| r.time())
                .min();
            if last > first {
                problems.push(format!(
                    "{subject}: generation {} events until {last:?}, generation {} from {first:?}",
                    g[0], g[1]
                ));
            }
        }
        for r in rs
            .iter()
            .filter(|r| r.short_type() == "api.deploy-completed")
        {
            let request = rs.iter().find(|q| {
                q.short_type() == "api.deploy-requested"
                    && q.data()["requestId"] == r.data()["requestId"]
            });
            match request {
                Some(q) if q.time() <= r.time() => {}
                Some(q) => problems.push(format!(
                    "{subject}: {} at {:?} before its request at {:?}",
                    r.describe(),
                    r.time(),
                    q.time()
                )),
                None => problems.push(format!("{subject}: {} without its request", r.describe())),
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} ordering problems:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

async fn create_all(apis: &Api<DynamicObject>, names: &[String]) {
    let results =
        join_all(names.iter().map(|n| async move {
            (n, apis.create(&PostParams::default(), &api_object(n)).await)
        }))
        .await;
    for (n, r) in results {
        r.unwrap_or_else(|e| panic!("creating {n}: {e}"));
    }
}

/// Waits until every one of `names` is Ready at `generation` and owes `owed` events (status
/// `pendingEvents` and `owedEvents` agree), and returns how long that took.
async fn wait_ready_owing(
    apis: &Api<DynamicObject>,
    names: &[String],
    generation: i64,
    owed: usize,
    timeout: Duration,
    op: &OperatorProcess,
) -> Duration {
    let started = Instant::now();
    let mut last = String::from("no list yet");
    loop {
        if let Some(all) = list(apis).await {
            let mut not_yet = Vec::new();
            for n in names {
                let Some(o) = all.get(n) else {
                    not_yet.push(format!("{n}: missing"));
                    continue;
                };
                let outbox = Outbox::of(o);
                let ok = is_ready(o)
                    && o["metadata"]["generation"] == generation
                    && outbox.pending.len() == owed
                    && outbox.owed == Some(owed as i64);
                if !ok {
                    not_yet.push(format!(
                        "{n}: ready={} generation={} pendingEvents={} owedEvents={:?}",
                        is_ready(o),
                        o["metadata"]["generation"],
                        outbox.pending.len(),
                        outbox.owed
                    ));
                }
            }
            if not_yet.is_empty() {
                return started.elapsed();
            }
            last = format!(
                "{} of {} not yet, e.g. {}",
                not_yet.len(),
                names.len(),
                not_yet.into_iter().take(5).collect::<Vec<_>>().join("; ")
            );
        }
        if started.elapsed() >= timeout {
            panic!(
                "timed out after {timeout:?} waiting for {} Apis Ready at generation {generation} \
                 owing {owed} events each while the broker is down: {last}\n{}",
                names.len(),
                operator_state(op).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until no Api of the namespace owes anything; on timeout, says who still owes what.
async fn wait_all_delivered(apis: &Api<DynamicObject>, timeout: Duration, op: &OperatorProcess) {
    let started = Instant::now();
    loop {
        let owed = owed_events(apis).await;
        if owed.is_empty() {
            return;
        }
        if started.elapsed() >= timeout {
            let mut by_object: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for (name, what) in owed.values() {
                by_object.entry(name).or_default().push(what);
            }
            let listing: Vec<String> = by_object
                .iter()
                .take(10)
                .map(|(n, w)| format!("{n}: {}", w.join("; ")))
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for every Api's outbox to be empty: {} events \
                 still owed by {} Apis, e.g.\n  {}\n{}",
                owed.len(),
                by_object.len(),
                listing.join("\n  "),
                operator_state(op).await
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn owed_total(apis: &Api<DynamicObject>) -> Option<usize> {
    Some(
        list(apis)
            .await?
            .values()
            .map(|o| Outbox::of(o).pending.len())
            .sum(),
    )
}

/// Every event owed in the status of the namespace's Apis, by id: (object, description).
async fn owed_events(apis: &Api<DynamicObject>) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for (name, o) in list(apis).await.expect("list the Apis") {
        for p in Outbox::of(&o).pending {
            let id = p["id"].as_str().unwrap_or_default().to_owned();
            let doc: Value = p["event"]
                .as_str()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or(Value::Null);
            let what = format!(
                "{} env={} action={} gen={} on {}",
                doc["type"].as_str().unwrap_or("?"),
                doc["data"]["environment"].as_str().unwrap_or("-"),
                doc["data"]["action"].as_str().unwrap_or("-"),
                doc["resourcegeneration"],
                p["topic"].as_str().unwrap_or("?")
            );
            out.insert(id, (name.clone(), what));
        }
    }
    out
}

/// Every event once recorded as owed reached the broker (by id).
fn assert_owed_arrived(
    owed: &BTreeMap<String, (String, String)>,
    records: &[EventRecord],
    when: &str,
) {
    let read: BTreeSet<&str> = records.iter().map(|r| r.id()).collect();
    let lost: Vec<String> = owed
        .iter()
        .filter(|(id, _)| !read.contains(id.as_str()))
        .map(|(id, (name, what))| format!("{name}: {what} id={id}"))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of the {} events owed in status {when} never reached the broker:\n  {}",
        lost.len(),
        owed.len(),
        lost.join("\n  ")
    );
}

#[tokio::test]
async fn the_disposable_broker_stops_and_comes_back_with_its_records() {
    // The infrastructure the outage tests stand on: no operator involved.
    let Some(_lab) = Lab::connect().await else {
        return;
    };
    use rdkafka::producer::FutureRecord;
    let mut broker = DisposableBroker::start().await;
    let prefix = unique_prefix();
    let admin: rdkafka::admin::AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .create()
        .expect("admin client");
    let topics: Vec<String> = e2e::events::TOPICS
        .iter()
        .map(|t| format!("{prefix}{t}"))
        .collect();
    let new: Vec<rdkafka::admin::NewTopic> = topics
        .iter()
        .map(|t| rdkafka::admin::NewTopic::new(t, 3, rdkafka::admin::TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &rdkafka::admin::AdminOptions::new())
        .await
        .expect("create topics")
    {
        r.expect("topic created");
    }
    let collector =
        EventCollector::start(&broker.brokers(), &prefix, Duration::from_secs(30)).await;
    let producer = e2e::kafka::producer(&broker.brokers());
    let send = |i: usize| {
        let producer = producer.clone();
        let topic = format!("{prefix}api-created");
        async move {
            let value = json!({"id": format!("e{i}"), "type": "x"}).to_string();
            producer
                .send(
                    FutureRecord::to(&topic).key("k").payload(&value),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .expect("produce")
        }
    };
    for i in 0..3 {
        send(i).await;
    }
    collector
        .until(Duration::from_secs(30), "3 records", |rs| {
            (rs.len() == 3).then_some(())
        })
        .await;
    broker.stop().await;
    assert!(
        std::net::TcpStream::connect(broker.brokers()).is_err(),
        "the stopped broker still listens"
    );
    broker.start_again().await;
    for i in 3..5 {
        send(i).await;
    }
    broker.kill().await;
    broker.start_again().await;
    send(5).await;
    collector
        .until(
            Duration::from_secs(60),
            "6 records, each read once, across a stop and a kill",
            |rs| (rs.len() == 6).then_some(()),
        )
        .await;
    collector.caught_up(Duration::from_secs(30)).await;
    let ids: Vec<String> = collector
        .records()
        .iter()
        .map(|r| r.id().to_owned())
        .collect();
    assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4", "e5"]);
}

#[tokio::test]
async fn a_two_minute_broker_outage_loses_no_event_and_duplicates_none() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ev-outage", &[]).await;
    let _sweep = FinalizerSweep::new(&lab, ns.name());
    let sim = Sim::start(&[]).await;
    let mut broker = DisposableBroker::start().await;
    let prefix = unique_prefix();
    let op = start_operator(&lab, &ns, "apim-e2e-ev-outage", &sim, &broker, &prefix);
    op.wait_ready(Duration::from_secs(60)).await;
    let events = EventCollector::start(&broker.brokers(), &prefix, Duration::from_secs(60)).await;
    let apis: Api<DynamicObject> =
        Api::namespaced_with(lab.admin(), ns.name(), &apim_resource("Api"));

    // An Api whose events are all out before the outage; it is deleted during the outage.
    create_all(&apis, &["doomed".to_owned()]).await;
    let doomed_subject = format!("{}/doomed", ns.name());
    events
        .until(
            Duration::from_secs(90),
            &format!(
                "the creation events of doomed (log {})",
                op.log_path.display()
            ),
            |rs| {
                (rs.iter().filter(|r| r.subject() == doomed_subject).count() >= CREATION_EVENTS)
                    .then_some(())
            },
        )
        .await;
    wait_all_delivered(&apis, Duration::from_secs(60), &op).await;
    events.caught_up(Duration::from_secs(30)).await;
    let before_outage = events.records().len();

    // The outage: two minutes.
    broker.stop().await;
    let outage_started = Instant::now();
    eprintln!("broker stopped; creating 50 Apis");
    let names: Vec<String> = (0..50).map(|i| format!("api-{i:02}")).collect();
    create_all(&apis, &names).await;
    apis.delete("doomed", &DeleteParams::default())
        .await
        .expect("delete doomed");
    let took = wait_ready_owing(
        &apis,
        &names,
        1,
        CREATION_EVENTS,
        Duration::from_secs(100),
        &op,
    )
    .await;
    eprintln!("50 Apis Ready, owing {CREATION_EVENTS} events each, {took:?} after creation");
    let apis_ref = &apis;
    let patches = join_all(names.iter().map(|n| async move {
        let patch =
            json!({"spec": {"backendUrl": format!("https://{n}-v2.internal.example.com/v1")}});
        apis_ref
            .patch(n, &PatchParams::default(), &Patch::Merge(patch))
            .await
    }))
    .await;
    for (n, p) in names.iter().zip(patches) {
        p.unwrap_or_else(|e| panic!("changing {n}: {e}"));
    }
    let left = Duration::from_secs(115).saturating_sub(outage_started.elapsed());
    let took = wait_ready_owing(
        &apis,
        &names,
        2,
        CREATION_EVENTS + UPDATE_EVENTS,
        left.max(Duration::from_secs(30)),
        &op,
    )
    .await;
    eprintln!(
        "50 Apis Ready at generation 2, owing {} events each, {took:?} after the change ({:?} into the outage)",
        CREATION_EVENTS + UPDATE_EVENTS,
        outage_started.elapsed()
    );
    let owed_in_outage = owed_events(&apis).await;
    // doomed waits for the broker: its deletion events are owed, so is the object.
    let doomed = apis
        .get_opt("doomed")
        .await
        .expect("get doomed")
        .expect("doomed is kept while its deletion events are owed");
    assert!(doomed.metadata.deletion_timestamp.is_some());
    let doomed_json = serde_json::to_value(&doomed).expect("json");
    let doomed_owed = Outbox::of(&doomed_json);
    eprintln!(
        "doomed, deleted during the outage: pendingEvents={} owedEvents={:?} finalizers={:?}",
        doomed_owed.pending.len(),
        doomed_owed.owed,
        doomed.metadata.finalizers
    );
    assert!(
        !doomed_owed.is_empty(),
        "doomed's deletion events must be owed in its status while the broker is down"
    );

    // Hold the outage for its two minutes (the scenario's length, not an assertion).
    let outage = Duration::from_secs(120);
    tokio::time::sleep(outage.saturating_sub(outage_started.elapsed())).await;
    assert_eq!(
        events.records().len(),
        before_outage,
        "records arrived while the broker was down"
    );
    let owed_now = owed_total(&apis).await.expect("list");
    let still_ready = list(&apis)
        .await
        .expect("list")
        .iter()
        .filter(|(n, o)| n.as_str() != "doomed" && is_ready(o))
        .count();
    assert_eq!(still_ready, 50, "every Api stays Ready through the outage");
    eprintln!(
        "outage of {:?}: {owed_now} events owed in status; starting the broker again",
        outage_started.elapsed()
    );
    broker.start_again().await;
    let back = Instant::now();

    // Everything is delivered: every outbox empties, doomed goes, and the broker holds 13
    // events per Api and doomed's deletion.
    let subjects: BTreeSet<String> = names.iter().map(|n| format!("{}/{n}", ns.name())).collect();
    let expected_ids = names.len() * (CREATION_EVENTS + UPDATE_EVENTS);
    wait_all_delivered(&apis, Duration::from_secs(240), &op).await;
    let delivered_in = back.elapsed();
    wait::until(
        Duration::from_secs(60),
        "doomed to be gone once its events are out",
        || async {
            apis.get_opt("doomed")
                .await
                .ok()
                .filter(Option::is_none)
                .map(|_| ())
        },
    )
    .await;
    events.caught_up(Duration::from_secs(60)).await;
    let records = events.records();
    eprintln!(
        "after the outage: every outbox empty {delivered_in:?} after the broker was back; read {}",
        summary(&records)
    );

    assert_contract(&records, &prefix);
    assert_owed_arrived(&owed_in_outage, &records, "during the outage");
    let t = tally(&records, &subjects);
    let duplicates: Vec<String> = t
        .by_id
        .iter()
        .filter(|(_, rs)| rs.len() > 1)
        .map(|(id, rs)| {
            format!(
                "{id} x{}: {}",
                rs.len(),
                rs.iter()
                    .map(|r| format!("{}@{}", r.topic, r.offset))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    assert!(
        duplicates.is_empty(),
        "{} ids delivered more than once:\n  {}",
        duplicates.len(),
        duplicates.join("\n  ")
    );
    assert_eq!(
        t.by_id.len(),
        expected_ids,
        "distinct event ids of the 50 Apis"
    );
    assert_facts(&t, &subjects, &expected_facts(&[1, 2]));
    assert_ordered(&records, &subjects);
    let doomed_records: Vec<&EventRecord> = records
        .iter()
        .filter(|r| r.subject() == doomed_subject)
        .collect();
    let doomed_types: BTreeMap<&str, usize> =
        doomed_records.iter().fold(BTreeMap::new(), |mut m, r| {
            *m.entry(r.short_type()).or_default() += 1;
            m
        });
    assert_eq!(
        (
            doomed_types.get("api.deleted"),
            doomed_records
                .iter()
                .filter(|r| r.data()["action"] == "delete")
                .count()
        ),
        (Some(&1), 1),
        "doomed's deletion: one api.deleted and one audit \"delete\": {doomed_types:?}"
    );
}

#[tokio::test]
async fn an_operator_killed_while_publishing_loses_no_event() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ev-crash", &[]).await;
    let _sweep = FinalizerSweep::new(&lab, ns.name());
    let sim = Sim::start(&[]).await;
    let mut broker = DisposableBroker::start().await;
    let prefix = unique_prefix();
    let lease = "apim-e2e-ev-crash";
    let mut first = start_operator(&lab, &ns, lease, &sim, &broker, &prefix);
    first.wait_ready(Duration::from_secs(60)).await;
    let events = EventCollector::start(&broker.brokers(), &prefix, Duration::from_secs(60)).await;
    let apis: Api<DynamicObject> =
        Api::namespaced_with(lab.admin(), ns.name(), &apim_resource("Api"));

    // Events owed: the broker is down while 30 Apis are created.
    broker.stop().await;
    let names: Vec<String> = (0..30).map(|i| format!("api-{i:02}")).collect();
    create_all(&apis, &names).await;
    wait_ready_owing(
        &apis,
        &names,
        1,
        CREATION_EVENTS,
        Duration::from_secs(120),
        &first,
    )
    .await;
    let owed_before = names.len() * CREATION_EVENTS;
    let owed_while_down = owed_events(&apis).await;

    // The broker returns; the operator is SIGKILLed as soon as publication shows: the first
    // record read, or the first outbox entry cleared.
    broker.start_again().await;
    let subjects: BTreeSet<String> = names.iter().map(|n| format!("{}/{n}", ns.name())).collect();
    let (read, owed) = wait::until(
        Duration::from_secs(120),
        &format!(
            "the operator to start publishing its owed events (log {})",
            first.log_path.display()
        ),
        || async {
            let read = events
                .records()
                .iter()
                .filter(|r| subjects.contains(r.subject()))
                .count();
            let owed = owed_total(&apis).await?;
            (read > 0 || owed < owed_before).then_some((read, owed))
        },
    )
    .await;
    first.kill();
    let owed_at_kill = owed_events(&apis).await;
    let read_at_kill = events
        .records()
        .iter()
        .filter(|r| subjects.contains(r.subject()))
        .count();
    eprintln!(
        "operator SIGKILLed while publishing: {read} records read and {owed} owed when seen, \
         {read_at_kill} read and {} still owed in status after the kill",
        owed_at_kill.len()
    );
    assert!(
        !owed_at_kill.is_empty(),
        "the operator had delivered and cleared every event before it was killed: the crash \
         was not exercised ({read_at_kill} records read)"
    );

    // A new operator takes over (after the killed one's Lease expires) and delivers the rest.
    let second = start_operator(&lab, &ns, lease, &sim, &broker, &prefix);
    second.wait_ready(Duration::from_secs(60)).await;
    wait_all_delivered(&apis, Duration::from_secs(120), &second).await;
    events.caught_up(Duration::from_secs(60)).await;
    let records = events.records();
    eprintln!("after the restart: {}", summary(&records));

    assert_contract(&records, &prefix);
    assert_owed_arrived(&owed_at_kill, &records, "when the operator was killed");
    assert_owed_arrived(&owed_while_down, &records, "while the broker was down");
    let t = tally(&records, &subjects);
    assert_facts(&t, &subjects, &expected_facts(&[1]));
    assert_eq!(t.by_id.len(), owed_before, "distinct event ids");
    let mut resent = 0;
    for (id, rs) in &t.by_id {
        if rs.len() > 1 {
            resent += rs.len() - 1;
            for r in rs {
                assert_eq!(
                    r.value, rs[0].value,
                    "re-sends of {id} must be the same document"
                );
            }
        }
    }
    eprintln!(
        "{} distinct events, {resent} re-sent copies (same id and bytes)",
        t.by_id.len()
    );
    assert_ordered(&records, &subjects);
    // Both operators stay in the picture: events of the first, possibly re-sent by the second,
    // keep the first's source.
    let sources: BTreeSet<&str> = records
        .iter()
        .filter(|r| subjects.contains(r.subject()))
        .filter_map(|r| r.attr("source"))
        .collect();
    eprintln!("sources: {sources:?}");
}
