//! The operator's CloudEvents against the lab's broker: every emission point produces its
//! events, each on its topic under the test's own prefix, keyed by the resource's uid (the
//! event id on `audit-log`), with `ce_*` headers equal to its attributes and a body valid
//! against the committed `docs/events/` schemas; no record carries a secret; the examples of
//! `examples/` produce theirs.
//!
//! Each test runs its own `apim-sim` and `apim-operator` (watching a fresh namespace,
//! publishing under a fresh topic prefix). Needs `cargo build --bins` first.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::Utc;
use e2e::events::{
    EventCollector, EventRecord, FinalizerSweep, Schemas, Sim, Want, about, apim_resource,
    assert_contract, contract_problems, env_refs, is_ready, operator_env, pick, tagged,
    unique_prefix, want,
};
use e2e::operator::OperatorProcess;
use e2e::{Lab, LabUser, TestNamespace, crd_install, lab_or_skip, wait, workspace_root};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const DOC_30: &str = "openapi: 3.0.3\ninfo: {title: Payments, version: 1.0.0}\npaths:\n  /payments:\n    get:\n      responses:\n        '200': {description: ok}\n";

/// Actors the contract allows for a resource without the `apim.cab-i.com/actor` annotation:
/// "the operator's identity".
fn operator_actors(identity: &str) -> Vec<String> {
    vec![
        "system:apim-operator".into(),
        "apim-operator".into(),
        identity.into(),
        format!("apim-operator/{identity}"),
    ]
}

/// The test's operator: the simulator's gateways and AWX, events on `brokers` under `prefix`.
fn start_operator(
    lab: &Lab,
    ns: &TestNamespace,
    lease: &str,
    sim: &Sim,
    brokers: &str,
    prefix: &str,
) -> OperatorProcess {
    let mut env = sim.operator_env();
    env.extend(operator_env(brokers, prefix));
    env.push(("APIM_RESYNC_INTERVAL", "20s".into()));
    OperatorProcess::start(lab, ns.name(), lease, &env_refs(&env))
}

fn identity(lease: &str, op: &OperatorProcess) -> String {
    format!("{lease}-{}", op.port)
}

fn dynamic(lab: &Lab, ns: &str, kind: &str) -> Api<DynamicObject> {
    Api::namespaced_with(lab.admin(), ns, &apim_resource(kind))
}

async fn create(api: &Api<DynamicObject>, object: Value) -> Value {
    let obj: DynamicObject = serde_json::from_value(object).expect("an object");
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("creating {:?}: {e}", obj.metadata.name));
    serde_json::to_value(created).expect("json")
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Option<Value> {
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|o| serde_json::to_value(o).expect("json"))
}

async fn wait_ready(api: &Api<DynamicObject>, name: &str, op: &OperatorProcess) -> Value {
    wait::until(
        Duration::from_secs(90),
        &format!("{name} Ready (log {})", op.log_path.display()),
        || async { get(api, name).await.filter(is_ready) },
    )
    .await
}

/// Waits until the object owes nothing (its outbox is empty).
async fn wait_outbox_empty(api: &Api<DynamicObject>, name: &str, op: &OperatorProcess) {
    wait::until(
        Duration::from_secs(60),
        &format!(
            "{name}'s outbox (status.pendingEvents) to be empty (log {})",
            op.log_path.display()
        ),
        || async {
            let o = get(api, name).await?;
            e2e::events::Outbox::of(&o).is_empty().then_some(())
        },
    )
    .await
}

async fn wait_gone(api: &Api<DynamicObject>, name: &str, op: &OperatorProcess) {
    wait::until(
        Duration::from_secs(60),
        &format!("{name} to be gone (log {})", op.log_path.display()),
        || async {
            api.get_opt(name)
                .await
                .ok()
                .filter(Option::is_none)
                .map(|_| ())
        },
    )
    .await
}

/// What every event about one resource must carry: its subject, tenant, uid, the operator
/// instance as source, the expected actor (also in audit records), a time within the test.
struct Expect<'a> {
    prefix: &'a str,
    namespace: &'a str,
    name: &'a str,
    kind: &'a str,
    uid: &'a str,
    source: String,
    actors: Vec<String>,
    since: chrono::DateTime<Utc>,
}

impl Expect<'_> {
    /// Checks every record, then fails once listing every problem found.
    fn check(&self, records: &[&EventRecord]) {
        let owned: Vec<EventRecord> = records.iter().map(|r| (*r).clone()).collect();
        assert_contract(&owned, self.prefix);
        let subject = format!("{}/{}", self.namespace, self.name);
        let now = Utc::now();
        let mut problems = Vec::new();
        for r in records {
            let mut p = |m: String| problems.push(format!("{}: {m}", r.describe()));
            if r.subject() != subject {
                p(format!("subject, expected {subject}"));
            }
            if r.attr("tenant") != Some(self.namespace) {
                p(format!(
                    "tenant {:?}, expected {}",
                    r.attr("tenant"),
                    self.namespace
                ));
            }
            if r.resource_uid() != self.uid {
                p(format!(
                    "resourceuid {}, expected {}",
                    r.resource_uid(),
                    self.uid
                ));
            }
            if r.attr("source") != Some(self.source.as_str()) {
                p(format!(
                    "source {:?}, expected {}",
                    r.attr("source"),
                    self.source
                ));
            }
            let actor = r.attr("actor").unwrap_or_default();
            if !self.actors.iter().any(|a| a == actor) {
                p(format!(
                    "actor {actor:?}, expected one of {:?}",
                    self.actors
                ));
            }
            match r.time() {
                Some(t)
                    if t >= self.since - chrono::Duration::seconds(5)
                        && t <= now + chrono::Duration::seconds(5) => {}
                t => p(format!(
                    "time {t:?} outside the test ({} .. {now})",
                    self.since
                )),
            }
            if r.short_type() == "audit.recorded" && r.data()["actor"].as_str() != Some(actor) {
                p(format!("data.actor {} is not the actor", r.data()["actor"]));
            }
            if [
                "audit.recorded",
                "resource.created",
                "resource.tag-violation",
            ]
            .contains(&r.short_type())
                && r.data()["kind"].as_str() != Some(self.kind)
            {
                p(format!(
                    "data.kind {}, expected {}",
                    r.data()["kind"],
                    self.kind
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "{} problems with the events of {subject}:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
}

/// Deploy-requested precedes deploy-completed for each environment and generation, with the
/// same `requestId` and revision; completed ones succeeded.
fn check_deploys(records: &[&EventRecord], generation: i64, envs: &[&str], revision: &str) {
    for env in envs {
        let find = |t: &str| {
            records
                .iter()
                .find(|r| {
                    r.short_type() == t
                        && r.data()["environment"] == *env
                        && r.json["resourcegeneration"] == generation
                })
                .copied()
                .unwrap_or_else(|| panic!("no {t} for {env} at generation {generation}"))
        };
        let requested = find("api.deploy-requested");
        let completed = find("api.deploy-completed");
        assert_eq!(
            completed.data()["result"],
            "succeeded",
            "{}",
            completed.describe()
        );
        assert_eq!(
            requested.data()["requestId"],
            completed.data()["requestId"],
            "{env}: requested and completed share the requestId"
        );
        for r in [requested, completed] {
            assert_eq!(r.data()["revision"], revision, "{}: revision", r.describe());
        }
        assert!(
            requested.time() <= completed.time(),
            "{env}: requested at {:?} after completed at {:?}",
            requested.time(),
            completed.time()
        );
    }
}

fn ids(records: &[&EventRecord]) -> Vec<String> {
    records.iter().map(|r| r.id().to_owned()).collect()
}

/// Exactly `wants` among `records`: each one matched, no other event, and no id read twice
/// (the contract allows a re-send only across a crash).
fn assert_exactly(records: &[&EventRecord], wants: &[Want], what: &str) {
    let mut problems = Vec::new();
    let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        *copies.entry(r.id()).or_default() += 1;
    }
    for (id, n) in &copies {
        if *n > 1 {
            problems.push(format!("id {id} read {n} times (re-sent without a crash)"));
        }
    }
    let mut seen = HashSet::new();
    let distinct: Vec<&EventRecord> = records
        .iter()
        .filter(|r| seen.insert(r.id()))
        .copied()
        .collect();
    match pick(&distinct, wants) {
        Ok(matched) => {
            let matched: HashSet<&str> = matched.iter().map(|r| r.id()).collect();
            for r in &distinct {
                if !matched.contains(r.id()) {
                    problems.push(format!("unexpected {}", r.describe()));
                }
            }
        }
        Err(missing) => problems.push(format!("missing {missing:?}")),
    }
    assert!(
        problems.is_empty(),
        "{what}: expected exactly {:?}:\n  {}\nread:\n  {}",
        wants.iter().map(Want::describe).collect::<Vec<_>>(),
        problems.join("\n  "),
        records
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[tokio::test]
async fn the_contract_checks_accept_the_documented_example_and_reject_broken_records() {
    // The checks themselves, against docs/events/README.md's api.created example: no lab.
    let readme = std::fs::read_to_string(workspace_root().join("docs/events/README.md"))
        .expect("docs/events/README.md");
    let section = readme
        .split("### `com.cab-i.apim.api.created`")
        .nth(1)
        .expect("the api.created example");
    let body = section
        .split("```json")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("its JSON")
        .trim()
        .to_owned();
    let headers_text = section
        .split("headers:\n\n```")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("its headers");
    let headers: BTreeMap<String, String> = headers_text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let json: Value = serde_json::from_str(&body).expect("example JSON");
    let record = EventRecord {
        topic: "p.api-created".into(),
        partition: 0,
        offset: 0,
        key: json["resourceuid"].as_str().map(str::to_owned),
        headers,
        value: body.clone(),
        json,
        timestamp_ms: None,
        received: std::time::Instant::now(),
    };
    assert_eq!(
        contract_problems(&record, "p."),
        Vec::<String>::new(),
        "the documented example"
    );
    let broken = |f: &dyn Fn(&mut EventRecord)| {
        let mut r = record.clone();
        f(&mut r);
        contract_problems(&r, "p.")
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("key", broken(&|r| r.key = Some("another".into()))),
        ("topic", broken(&|r| r.topic = "p.api-updated".into())),
        (
            "header value",
            broken(&|r| {
                r.headers.insert("ce_subject".into(), "x/y".into());
            }),
        ),
        (
            "missing header",
            broken(&|r| {
                r.headers.remove("ce_tenant");
            }),
        ),
        (
            "content-type",
            broken(&|r| {
                r.headers.remove("content-type");
            }),
        ),
        (
            "data schema",
            broken(&|r| r.json["data"]["stages"] = json!("dev")),
        ),
        (
            "envelope schema",
            broken(&|r| r.json["specversion"] = json!("0.3")),
        ),
        (
            "time format",
            broken(&|r| {
                r.json["time"] = json!("yesterday");
                r.headers.insert("ce_time".into(), "yesterday".into());
            }),
        ),
        (
            "audit key",
            broken(&|r| {
                r.topic = "p.audit-log".into();
                r.json["type"] = json!("com.cab-i.apim.audit.recorded");
                r.headers
                    .insert("ce_type".into(), "com.cab-i.apim.audit.recorded".into());
            }),
        ),
    ];
    for (what, problems) in cases {
        assert!(!problems.is_empty(), "a broken {what} went unnoticed");
    }
    // Every committed data schema compiles.
    let _ = Schemas::get();
}

#[tokio::test]
async fn an_api_emits_its_creation_update_and_deletion_events() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ev-api", &[]).await;
    let _sweep = FinalizerSweep::new(&lab, ns.name());
    let sim = Sim::start(&[]).await;
    let prefix = unique_prefix();
    let lease = "apim-e2e-ev-api";
    let since = Utc::now();
    let op = start_operator(&lab, &ns, lease, &sim, lab.brokers(), &prefix);
    op.wait_ready(Duration::from_secs(60)).await;
    let events = EventCollector::start(lab.brokers(), &prefix, Duration::from_secs(60)).await;

    let apis = dynamic(&lab, ns.name(), "Api");
    let mut object = tagged(
        "Api",
        "payments",
        json!({
            "displayName": "Payments", "version": "1.0.0",
            "backendUrl": "https://payments.internal.example.com/v1",
            "definition": {"inline": DOC_30}, "stages": ["dev", "staging"]
        }),
    );
    // As the webhook stamps it: the actor of every event about this Api.
    object["metadata"]["annotations"]["apim.cab-i.com/actor"] = json!("jane.doe@example.com");
    let created = create(&apis, object).await;
    let uid = created["metadata"]["uid"].as_str().expect("uid").to_owned();
    let subject = format!("{}/payments", ns.name());
    let expect = Expect {
        prefix: &prefix,
        namespace: ns.name(),
        name: "payments",
        kind: "Api",
        uid: &uid,
        source: format!("apim-operator/{}", identity(lease, &op)),
        actors: vec!["jane.doe@example.com".into()],
        since,
    };

    // Creation: resource.created, api.created, audit "create", and per stage a deploy
    // request and its successful completion.
    let api = wait_ready(&apis, "payments", &op).await;
    let revision1 = api["status"]["revision"]
        .as_str()
        .expect("revision")
        .to_owned();
    let creation = vec![
        want("resource.created").generation(1),
        want("api.created").generation(1),
        want("audit.recorded").action("create").generation(1),
        want("api.deploy-requested").env("dev").generation(1),
        want("api.deploy-requested").env("staging").generation(1),
        want("api.deploy-completed").env("dev").generation(1),
        want("api.deploy-completed").env("staging").generation(1),
    ];
    let got = events
        .until(
            Duration::from_secs(60),
            "the 7 events of the Api's creation",
            |rs| pick(&about(rs, &subject), &creation).ok().map(|v| ids(&v)),
        )
        .await;
    eprintln!("creation events: {got:?}");
    wait_outbox_empty(&apis, "payments", &op).await;
    events.caught_up(Duration::from_secs(30)).await;
    let all = events.records();
    let mine = about(&all, &subject);
    assert_exactly(&mine, &creation, "the Api's creation");
    expect.check(&mine);
    check_deploys(&mine, 1, &["dev", "staging"], &revision1);
    let api_created = mine
        .iter()
        .find(|r| r.short_type() == "api.created")
        .expect("api.created");
    assert_eq!(api_created.data()["stages"], json!(["dev", "staging"]));
    assert_eq!(api_created.data()["displayName"], "Payments");
    assert_eq!(api_created.data()["revision"], revision1.as_str());
    let resource_created = mine
        .iter()
        .find(|r| r.short_type() == "resource.created")
        .expect("resource.created");
    assert_eq!(resource_created.data()["tags"]["costCenter"], "cc-4711");
    assert_eq!(
        resource_created.data()["tags"]["owner"],
        "payments-team@example.com"
    );

    // A spec change: api.updated, audit "update", deploy request and completion per stage.
    apis.patch(
        "payments",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"backendUrl": "https://payments-v2.internal.example.com/v1"}}),
        ),
    )
    .await
    .expect("change spec.backendUrl");
    let api = wait::until(
        Duration::from_secs(90),
        "payments Ready at generation 2",
        || async {
            get(&apis, "payments")
                .await
                .filter(|a| is_ready(a) && a["metadata"]["generation"] == 2)
        },
    )
    .await;
    let revision2 = api["status"]["revision"]
        .as_str()
        .expect("revision")
        .to_owned();
    assert_ne!(revision1, revision2, "a new backend is a new revision");
    let update = vec![
        want("api.updated").generation(2),
        want("audit.recorded").action("update").generation(2),
        want("api.deploy-requested").env("dev").generation(2),
        want("api.deploy-requested").env("staging").generation(2),
        want("api.deploy-completed").env("dev").generation(2),
        want("api.deploy-completed").env("staging").generation(2),
    ];
    events
        .until(
            Duration::from_secs(60),
            "the 6 events of the spec change",
            |rs| pick(&about(rs, &subject), &update).ok().map(|_| ()),
        )
        .await;
    wait_outbox_empty(&apis, "payments", &op).await;
    events.caught_up(Duration::from_secs(30)).await;
    let all = events.records();
    let mine = about(&all, &subject);
    let gen2: Vec<&EventRecord> = mine
        .iter()
        .filter(|r| r.json["resourcegeneration"] == 2)
        .copied()
        .collect();
    let life = [&creation[..], &update[..]].concat();
    assert_exactly(&mine, &life, "the Api's creation and spec change");
    expect.check(&mine);
    check_deploys(&gen2, 2, &["dev", "staging"], &revision2);
    let updated = gen2
        .iter()
        .find(|r| r.short_type() == "api.updated")
        .expect("api.updated");
    assert_eq!(updated.data()["revision"], revision2.as_str());
    assert_eq!(updated.data()["previousRevision"], revision1.as_str());
    // A resource's facts come in order: every creation event before every update event.
    let last_creation = mine
        .iter()
        .filter(|r| r.json["resourcegeneration"] == 1)
        .filter_map(|r| r.time())
        .max();
    let first_update = gen2.iter().filter_map(|r| r.time()).min();
    assert!(
        last_creation <= first_update,
        "creation events ({last_creation:?}) after update events ({first_update:?})"
    );

    // Deletion: api.deleted and audit "delete", on the broker before the finalizer goes.
    apis.delete("payments", &DeleteParams::default())
        .await
        .expect("delete");
    wait_gone(&apis, "payments", &op).await;
    let gone_at = Utc::now();
    events.caught_up(Duration::from_secs(30)).await;
    let all = events.records();
    let mine = about(&all, &subject);
    let deletion = pick(
        &mine,
        &[want("api.deleted"), want("audit.recorded").action("delete")],
    )
    .unwrap_or_else(|missing| {
        panic!(
            "the Api is gone but these were not on the broker: {missing:?}; read:\n  {}",
            mine.iter()
                .map(|r| r.describe())
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    });
    for r in &deletion {
        let ts = r.timestamp_ms.expect("a record timestamp");
        assert!(
            ts <= gone_at.timestamp_millis(),
            "{} produced at {ts}, after the Api was seen gone at {}",
            r.describe(),
            gone_at.timestamp_millis()
        );
    }
    assert_eq!(
        deletion[0].data()["environments"],
        json!(["dev", "staging"])
    );
    let life = [
        &life[..],
        &[want("api.deleted"), want("audit.recorded").action("delete")],
    ]
    .concat();
    assert_exactly(&mine, &life, "the Api's whole life");
    // The annotation names who last changed the Api, not who deleted it (a deletion cannot be
    // stamped): the deletion's events are the operator's, every other one the user's.
    let operators = operator_actors(&identity(lease, &op));
    for r in &mine {
        let actor = r.attr("actor").unwrap_or_default().to_owned();
        let deleting =
            r.short_type() == "api.deleted" || r.data()["action"].as_str() == Some("delete");
        if deleting {
            assert!(
                operators.contains(&actor),
                "{}: actor {actor}",
                r.describe()
            );
        } else {
            assert_eq!(actor, "jane.doe@example.com", "{}", r.describe());
        }
    }
    let expect = Expect {
        actors: [vec!["jane.doe@example.com".to_string()], operators].concat(),
        ..expect
    };
    expect.check(&mine);
}

#[tokio::test]
async fn applications_and_subscriptions_emit_their_events_and_never_a_secret() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ev-app", &[]).await;
    let _sweep = FinalizerSweep::new(&lab, ns.name());
    let sim = Sim::start(&[]).await;
    let prefix = unique_prefix();
    let lease = "apim-e2e-ev-app";
    let since = Utc::now();
    let op = start_operator(&lab, &ns, lease, &sim, lab.brokers(), &prefix);
    op.wait_ready(Duration::from_secs(60)).await;
    let events = EventCollector::start(lab.brokers(), &prefix, Duration::from_secs(60)).await;
    let apis = dynamic(&lab, ns.name(), "Api");
    let apps = dynamic(&lab, ns.name(), "Application");
    let subs = dynamic(&lab, ns.name(), "Subscription");

    create(
        &apis,
        tagged(
            "Api",
            "payments",
            json!({"displayName": "Payments", "version": "1.0.0",
                   "backendUrl": "https://payments.internal.example.com/v1",
                   "definition": {"inline": DOC_30}, "stages": ["dev"]}),
        ),
    )
    .await;
    let app = create(
        &apps,
        tagged(
            "Application",
            "checkout",
            json!({"displayName": "Checkout", "description": "web shop", "environment": "dev",
                   "contactEmails": ["shop@example.com"]}),
        ),
    )
    .await;
    let sub = create(
        &subs,
        tagged(
            "Subscription",
            "checkout-payments",
            json!({"apiRef": {"name": "payments"}, "applicationRef": {"name": "checkout"},
                   "environment": "dev"}),
        ),
    )
    .await;
    let source = format!("apim-operator/{}", identity(lease, &op));
    let actors = operator_actors(&identity(lease, &op));
    let app_subject = format!("{}/checkout", ns.name());
    let sub_subject = format!("{}/checkout-payments", ns.name());

    wait_ready(&apps, "checkout", &op).await;
    wait::until(
        Duration::from_secs(90),
        "the Subscription to become active",
        || async {
            get(&subs, "checkout-payments")
                .await
                .filter(|s| s["status"]["active"] == true)
        },
    )
    .await;
    let app_created = [
        want("resource.created"),
        want("audit.recorded").action("create"),
        want("application.created"),
    ];
    let sub_created = [
        want("resource.created"),
        want("audit.recorded").action("create"),
        want("subscription.created"),
    ];
    events
        .until(
            Duration::from_secs(60),
            "the Application's and the active Subscription's creation events",
            |rs| {
                pick(&about(rs, &app_subject), &app_created).ok()?;
                pick(&about(rs, &sub_subject), &sub_created)
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    let secret = Api::<Secret>::namespaced(lab.admin(), ns.name())
        .get("checkout-credentials")
        .await
        .expect("the credentials Secret");
    let secret_values: Vec<String> = secret
        .data
        .iter()
        .flatten()
        .map(|(_, v)| String::from_utf8_lossy(&v.0).into_owned())
        .filter(|v| v.len() >= 8)
        .collect();
    assert!(!secret_values.is_empty(), "the Secret holds a key");

    // Deleting the Subscription, then the Application.
    subs.delete("checkout-payments", &DeleteParams::default())
        .await
        .expect("delete the Subscription");
    wait_gone(&subs, "checkout-payments", &op).await;
    apps.delete("checkout", &DeleteParams::default())
        .await
        .expect("delete the Application");
    wait_gone(&apps, "checkout", &op).await;
    let sub_deleted = [
        want("subscription.deleted"),
        want("audit.recorded").action("delete"),
    ];
    let app_deleted = [
        want("application.deleted"),
        want("audit.recorded").action("delete"),
    ];
    events
        .until(
            Duration::from_secs(30),
            "the deletion events of the Subscription and the Application",
            |rs| {
                pick(&about(rs, &app_subject), &app_deleted).ok()?;
                pick(&about(rs, &sub_subject), &sub_deleted)
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    apis.delete("payments", &DeleteParams::default())
        .await
        .expect("delete the Api");
    wait_gone(&apis, "payments", &op).await;
    events.caught_up(Duration::from_secs(30)).await;

    let all = events.records();
    for (subject, object, kind, wants) in [
        (
            &app_subject,
            &app,
            "Application",
            [&app_created[..], &app_deleted[..]].concat(),
        ),
        (
            &sub_subject,
            &sub,
            "Subscription",
            [&sub_created[..], &sub_deleted[..]].concat(),
        ),
    ] {
        let mine = about(&all, subject);
        assert_exactly(&mine, &wants, kind);
        let name = object["metadata"]["name"].as_str().expect("name");
        Expect {
            prefix: &prefix,
            namespace: ns.name(),
            name,
            kind,
            uid: object["metadata"]["uid"].as_str().expect("uid"),
            source: source.clone(),
            actors: actors.clone(),
            since,
        }
        .check(&mine);
    }
    let application_created = about(&all, &app_subject)
        .into_iter()
        .find(|r| r.short_type() == "application.created")
        .expect("application.created");
    assert_eq!(application_created.data()["environment"], "dev");
    assert_eq!(
        application_created.data()["credentialsSecret"],
        "checkout-credentials"
    );
    let subscription_created = about(&all, &sub_subject)
        .into_iter()
        .find(|r| r.short_type() == "subscription.created")
        .expect("subscription.created");
    assert_eq!(
        (
            subscription_created.data()["application"].as_str(),
            subscription_created.data()["api"].as_str(),
            subscription_created.data()["environment"].as_str()
        ),
        (Some("checkout"), Some("payments"), Some("dev"))
    );
    // No record, whatever its topic, carries a credential: not in the value, key or headers.
    for r in &all {
        let text = format!("{} {:?} {:?}", r.value, r.key, r.headers);
        for v in &secret_values {
            assert!(
                !text.contains(v.as_str()),
                "{} carries a value of the Secret",
                r.describe()
            );
        }
    }
    assert_contract(&all, &prefix);
}

#[tokio::test]
async fn an_api_with_bad_tags_raises_a_tag_violation() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "ev-tags", &[]).await;
    let _sweep = FinalizerSweep::new(&lab, ns.name());
    let sim = Sim::start(&[]).await;
    let prefix = unique_prefix();
    let lease = "apim-e2e-ev-tags";
    let since = Utc::now();
    let op = start_operator(&lab, &ns, lease, &sim, lab.brokers(), &prefix);
    op.wait_ready(Duration::from_secs(60)).await;
    let events = EventCollector::start(lab.brokers(), &prefix, Duration::from_secs(60)).await;
    let apis = dynamic(&lab, ns.name(), "Api");
    // No webhook is registered: the API server admits it; the operator must report it.
    let mut object = tagged(
        "Api",
        "untagged",
        json!({"displayName": "Untagged", "version": "1.0.0",
               "backendUrl": "https://untagged.internal.example.com/v1",
               "definition": {"inline": DOC_30}, "stages": ["dev"]}),
    );
    let labels = object["metadata"]["labels"]
        .as_object_mut()
        .expect("labels");
    labels.remove("apim.cab-i.com/cost-center");
    labels.insert("apim.cab-i.com/data-class".into(), json!("top-secret"));
    let created = create(&apis, object).await;
    let uid = created["metadata"]["uid"].as_str().expect("uid").to_owned();
    let subject = format!("{}/untagged", ns.name());
    let record = events
        .until(
            Duration::from_secs(60),
            &format!(
                "a tag-violation event for {subject} (log {})",
                op.log_path.display()
            ),
            |rs| {
                about(rs, &subject)
                    .into_iter()
                    .find(|r| r.short_type() == "resource.tag-violation")
                    .cloned()
            },
        )
        .await;
    Expect {
        prefix: &prefix,
        namespace: ns.name(),
        name: "untagged",
        kind: "Api",
        uid: &uid,
        source: format!("apim-operator/{}", identity(lease, &op)),
        actors: operator_actors(&identity(lease, &op)),
        since,
    }
    .check(&[&record]);
    let violations: Vec<&str> = record.data()["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        violations.iter().any(|v| v.contains("cost-center"))
            && violations.iter().any(|v| v.contains("data-class")),
        "both violations named: {violations:?}"
    );
    assert_eq!(
        record.data()["labels"]["apim.cab-i.com/data-class"],
        "top-secret",
        "{}",
        record.value
    );
}

#[tokio::test]
async fn the_examples_produce_their_events() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    // A namespace labelled like examples/00-namespaces.yaml's tenant-finance.
    let ns = TestNamespace::create(
        &lab,
        "ev-examples",
        &[
            ("apim.cab-i.com/environment", "dev"),
            ("apim.cab-i.com/project", "finance-platform"),
            ("apim.cab-i.com/cost-center", "CC-4410"),
            ("apim.cab-i.com/ttl", "30d"),
            ("apim.cab-i.com/auto-teardown", "false"),
            ("apim.cab-i.com/data-class", "confidential"),
            ("apim.cab-i.com/enforce-tags", "true"),
        ],
    )
    .await;
    let _sweep = FinalizerSweep::new(&lab, ns.name());
    let playbooks = workspace_root().join("ansible");
    let sim = Sim::start(&["--playbook-dir", playbooks.to_str().expect("utf-8 path")]).await;
    let prefix = unique_prefix();
    let lease = "apim-e2e-ev-examples";
    let since = Utc::now();
    let op = start_operator(&lab, &ns, lease, &sim, lab.brokers(), &prefix);
    op.wait_ready(Duration::from_secs(60)).await;
    let events = EventCollector::start(lab.brokers(), &prefix, Duration::from_secs(60)).await;

    // The namespaced examples of the kinds with a controller, moved into the test's namespace.
    // (The PromotionRequest needs the webhook's requester stamp and an approver; the
    // TeardownPolicy is cluster-wide and would govern other tests' resources.)
    for file in [
        "10-payment-api-openapi.yaml",
        "20-payment-api.yaml",
        "30-checkout-web.yaml",
        "40-subscription.yaml",
    ] {
        let text = std::fs::read_to_string(workspace_root().join("examples").join(file))
            .unwrap_or_else(|e| panic!("examples/{file}: {e}"));
        let text = text.replace(
            "namespace: tenant-finance",
            &format!("namespace: {}", ns.name()),
        );
        let (ok, out, err) =
            lab.kubectl_with_input(LabUser("admin"), &["apply", "-f", "-"], Some(&text));
        assert!(ok, "applying examples/{file}: {out}{err}");
    }
    let source = format!("apim-operator/{}", identity(lease, &op));
    let actors = operator_actors(&identity(lease, &op));
    let api_subject = format!("{}/payment-api", ns.name());
    let app_subject = format!("{}/checkout-web", ns.name());
    let sub_subject = format!("{}/checkout-web-payment-api-dev", ns.name());
    let api_wants = vec![
        want("resource.created"),
        want("api.created"),
        want("audit.recorded").action("create"),
        want("api.deploy-requested").env("dev"),
        want("api.deploy-requested").env("staging"),
        want("api.deploy-completed").env("dev"),
        want("api.deploy-completed").env("staging"),
    ];
    let app_wants = vec![
        want("resource.created"),
        want("audit.recorded").action("create"),
        want("application.created"),
    ];
    let sub_wants = vec![
        want("resource.created"),
        want("audit.recorded").action("create"),
        want("subscription.created"),
    ];
    events
        .until(
            Duration::from_secs(180),
            &format!(
                "the events of payment-api, checkout-web and its subscription (log {})",
                op.log_path.display()
            ),
            |rs| {
                pick(&about(rs, &api_subject), &api_wants).ok()?;
                pick(&about(rs, &app_subject), &app_wants).ok()?;
                pick(&about(rs, &sub_subject), &sub_wants).ok().map(|_| ())
            },
        )
        .await;
    let apis = dynamic(&lab, ns.name(), "Api");
    let apps = dynamic(&lab, ns.name(), "Application");
    let subs = dynamic(&lab, ns.name(), "Subscription");
    for (api, name) in [
        (&apis, "payment-api"),
        (&apps, "checkout-web"),
        (&subs, "checkout-web-payment-api-dev"),
    ] {
        wait_outbox_empty(api, name, &op).await;
    }
    events.caught_up(Duration::from_secs(30)).await;
    let all = events.records();
    for (api, kind, name, subject, wants) in [
        (&apis, "Api", "payment-api", &api_subject, &api_wants),
        (
            &apps,
            "Application",
            "checkout-web",
            &app_subject,
            &app_wants,
        ),
        (
            &subs,
            "Subscription",
            "checkout-web-payment-api-dev",
            &sub_subject,
            &sub_wants,
        ),
    ] {
        let object = get(api, name).await.expect("the example object");
        let mine = about(&all, subject);
        assert_exactly(&mine, wants, name);
        Expect {
            prefix: &prefix,
            namespace: ns.name(),
            name,
            kind,
            uid: object["metadata"]["uid"].as_str().expect("uid"),
            source: source.clone(),
            actors: actors.clone(),
            since,
        }
        .check(&mine);
    }
    // payment-api deploys directly to dev and through AWX to staging (driverOverrides).
    let api = get(&apis, "payment-api").await.expect("payment-api");
    let revision = api["status"]["revision"].as_str().expect("revision");
    let mine = about(&all, &api_subject);
    check_deploys(&mine, 1, &["dev", "staging"], revision);
    for (env, driver) in [("dev", "direct"), ("staging", "awx")] {
        let completed = mine
            .iter()
            .find(|r| r.short_type() == "api.deploy-completed" && r.data()["environment"] == env)
            .expect("deploy-completed");
        assert_eq!(completed.data()["driver"], driver, "{}", completed.value);
    }
    let resource_created = mine
        .iter()
        .find(|r| r.short_type() == "resource.created")
        .expect("resource.created");
    assert_eq!(
        resource_created.data()["tags"]["dataClass"],
        "confidential",
        "{}",
        resource_created.value
    );
    assert_contract(&all, &prefix);
    // Clean up while the operator runs (finalizers).
    for (api, name) in [
        (&subs, "checkout-web-payment-api-dev"),
        (&apps, "checkout-web"),
        (&apis, "payment-api"),
    ] {
        api.delete(name, &DeleteParams::default())
            .await
            .expect("delete");
        wait_gone(api, name, &op).await;
    }
}
