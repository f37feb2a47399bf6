//! The operator runtime against the lab: `Accepted` conditions from the shared tag rules,
//! no status rewrite of converged objects, leader election with hand-over, and the API
//! server refusing what the CRD schema forbids.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::operator::OperatorProcess;
use e2e::{TestNamespace, crd_install, lab_or_skip, wait};
use kube::api::{Api, PostParams};
use serde_json::json;

fn tags(ttl: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let labels = [
        ("apim.cab-i.com/environment", "dev"),
        ("apim.cab-i.com/project", "payments"),
        ("apim.cab-i.com/cost-center", "cc-4711"),
        ("apim.cab-i.com/ttl", ttl),
        ("apim.cab-i.com/auto-teardown", "true"),
        ("apim.cab-i.com/data-class", "internal"),
    ];
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let annotations = [(
        "apim.cab-i.com/owner".to_string(),
        "payments-team@example.com".to_string(),
    )]
    .into();
    (labels, annotations)
}

fn api_object(
    name: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> crds::Api {
    serde_json::from_value(json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "Api",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "displayName": "Payments",
            "version": "1.0.0",
            "backendUrl": "https://payments.internal.example.com/v1",
            "definition": {"inline": "openapi: 3.0.3\ninfo: {title: Payments, version: 1.0.0}\npaths: {}\n"},
            "stages": ["dev"]
        }
    }))
    .expect("a valid Api")
}

async fn accepted_condition(api: &Api<crds::Api>, name: &str) -> Option<(String, String, String)> {
    let obj = api.get(name).await.ok()?;
    let status = obj.status?;
    let c = status
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Accepted")?;
    Some((c.status, c.reason, c.message))
}

#[tokio::test]
async fn operator_sets_accepted_and_then_writes_nothing() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "accept", &[]).await;
    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());

    let (labels, annotations) = tags("7d");
    apis.create(
        &PostParams::default(),
        &api_object("good", labels, annotations),
    )
    .await
    .expect("good Api");
    // Missing project and owner, a 90-day TTL outside prod, a bad data class.
    let (mut labels, _) = tags("90d");
    labels.remove("apim.cab-i.com/project");
    labels.insert("apim.cab-i.com/data-class".into(), "secret".into());
    apis.create(
        &PostParams::default(),
        &api_object("bad", labels, BTreeMap::new()),
    )
    .await
    .expect("bad Api");

    // A short resync so converged objects are reconciled again and again while we watch.
    let op = OperatorProcess::start(
        &lab,
        ns.name(),
        "apim-e2e-accept",
        &[("APIM_RESYNC_INTERVAL", "2s")],
    );
    op.wait_ready(Duration::from_secs(60)).await;

    let (status, reason, _) =
        wait::until(Duration::from_secs(30), "Accepted on the good Api", || {
            accepted_condition(&apis, "good")
        })
        .await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Valid"));

    let (status, reason, message) =
        wait::until(Duration::from_secs(30), "Accepted on the bad Api", || {
            accepted_condition(&apis, "bad")
        })
        .await;
    assert_eq!(status, "False");
    assert_eq!(reason, "TagViolation");
    for tag in [
        "apim.cab-i.com/project",
        "apim.cab-i.com/owner",
        "apim.cab-i.com/ttl",
        "apim.cab-i.com/data-class",
    ] {
        assert!(message.contains(tag), "message must name {tag}: {message}");
    }
    let good = apis.get("good").await.expect("good");
    assert_eq!(
        good.status.as_ref().and_then(|s| s.observed_generation),
        good.metadata.generation
    );

    // Converged: over a minute of reconciles every 2 s, no resourceVersion moves.
    let before: Vec<_> = apis
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|a| a.metadata.resource_version.clone())
        .collect();
    let writes_before = op.metric_sum("apim_operator_status_writes_total").await;
    let reconciles_before = op.metric_sum("apim_operator_reconciles_total").await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after: Vec<_> = apis
        .list(&Default::default())
        .await
        .expect("list")
        .items
        .iter()
        .map(|a| a.metadata.resource_version.clone())
        .collect();
    assert_eq!(before, after, "a converged object was rewritten");
    assert_eq!(
        op.metric_sum("apim_operator_status_writes_total").await,
        writes_before
    );
    let reconciles = op.metric_sum("apim_operator_reconciles_total").await - reconciles_before;
    assert!(
        reconciles >= 20.0,
        "expected periodic reconciles while idle, saw {reconciles}"
    );

    // Fixing the tags flips the condition.
    let (labels, annotations) = tags("7d");
    let mut bad = apis.get("bad").await.expect("bad");
    bad.metadata.labels = Some(labels);
    bad.metadata.annotations = Some(annotations);
    apis.replace("bad", &PostParams::default(), &bad)
        .await
        .expect("fix tags");
    let (status, _, _) = wait::until(
        Duration::from_secs(30),
        "Accepted=True after the fix",
        || async {
            accepted_condition(&apis, "bad")
                .await
                .filter(|(s, _, _)| s == "True")
        },
    )
    .await;
    assert_eq!(status, "True");
}

#[tokio::test]
async fn api_server_refuses_prod_in_stages() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "prod", &[]).await;
    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());
    let (labels, annotations) = tags("7d");
    let mut api = api_object("to-prod", labels, annotations);
    api.spec.stages.push(crds::Environment::Prod);
    match apis.create(&PostParams::default(), &api).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("prod"), "{}", status.message);
            assert!(status.message.contains("spec.stages"), "{}", status.message);
        }
        other => panic!("an Api with prod in spec.stages must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_a_killed_leader_hands_over() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "lease", &[]).await;
    let apis: Api<crds::Api> = Api::namespaced(lab.admin(), ns.name());
    let lease = [("APIM_LEASE_DURATION_SECONDS", "8")];

    let mut first = OperatorProcess::start(&lab, ns.name(), "apim-e2e-lease", &lease);
    first.wait_ready(Duration::from_secs(60)).await;
    let second = OperatorProcess::start(&lab, ns.name(), "apim-e2e-lease", &lease);
    // The second replica is alive but not ready: it does not hold the lease.
    wait::until(
        Duration::from_secs(30),
        "the standby to answer /readyz",
        || async {
            second
                .get("/readyz")
                .await
                .filter(|(code, body)| *code == 503 && body.contains("leader"))
        },
    )
    .await;
    assert_eq!(second.metric("apim_operator_leader").await, Some(0.0));
    assert_eq!(first.metric("apim_operator_leader").await, Some(1.0));

    let (labels, annotations) = tags("7d");
    apis.create(
        &PostParams::default(),
        &api_object("one", labels.clone(), annotations.clone()),
    )
    .await
    .expect("create");
    wait::until(
        Duration::from_secs(30),
        "the leader to accept `one`",
        || accepted_condition(&apis, "one"),
    )
    .await;
    assert_eq!(
        second.metric_sum("apim_operator_reconciles_total").await,
        0.0,
        "the standby reconciled"
    );

    // SIGKILL: the lease is not released; the standby takes over once it expires.
    first.kill();
    let killed_at = std::time::Instant::now();
    second.wait_ready(Duration::from_secs(30)).await;
    eprintln!(
        "hand-over after SIGKILL of the leader: {:?} (lease duration 8s)",
        killed_at.elapsed()
    );
    apis.create(
        &PostParams::default(),
        &api_object("two", labels, annotations),
    )
    .await
    .expect("create");
    wait::until(
        Duration::from_secs(30),
        "the new leader to accept `two`",
        || accepted_condition(&apis, "two"),
    )
    .await;
}
