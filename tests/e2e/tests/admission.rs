//! The admission webhook registered by URL with the lab's API server, judged by what the
//! lab's real users (their own tokens) can and cannot do.

use e2e::webhook::WebhookProcess;
use e2e::{Lab, LabUser, TestNamespace, crd_install, lab_or_skip};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

const TENANT: &str = "tenant-finance";

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn tag_labels() -> serde_json::Value {
    json!({
        "apim.cab-i.com/environment": "staging", "apim.cab-i.com/project": "payments",
        "apim.cab-i.com/cost-center": "cc-4711", "apim.cab-i.com/ttl": "14d",
        "apim.cab-i.com/auto-teardown": "false", "apim.cab-i.com/data-class": "internal"
    })
}

fn api_yaml(name: &str, namespace: &str, tagged: bool) -> String {
    let metadata = if tagged {
        json!({"name": name, "namespace": namespace, "labels": tag_labels(),
               "annotations": {"apim.cab-i.com/owner": "payments-team@example.com"}})
    } else {
        json!({"name": name, "namespace": namespace})
    };
    serde_json::to_string(&json!({
        "apiVersion": "apim.cab-i.com/v1alpha1", "kind": "Api", "metadata": metadata,
        "spec": {"displayName": "Refunds", "version": "1.0.0", "backendUrl": "https://refunds.example.com",
                 "definition": {"inline": "openapi: 3.0.3"}, "stages": ["dev"]}
    }))
    .expect("json")
}

fn promotion(name: &str, requester: Option<&str>) -> crds::PromotionRequest {
    let mut spec = json!({
        "apiRef": {"name": "payment-api"}, "sourceEnvironment": "staging", "targetEnvironment": "prod",
        "revision": "sha256:4f2a9c0d1e7b", "reason": "Release 1.4.0 passed staging sign-off"
    });
    if let Some(r) = requester {
        spec["requester"] = r.into();
    }
    serde_json::from_value(json!({
        "apiVersion": "apim.cab-i.com/v1alpha1", "kind": "PromotionRequest",
        "metadata": {"name": name, "namespace": TENANT, "labels": tag_labels(),
                     "annotations": {"apim.cab-i.com/owner": "payments-team@example.com"}},
        "spec": spec
    }))
    .expect("a PromotionRequest")
}

async fn requests_as(lab: &Lab, user: &'static str) -> Api<crds::PromotionRequest> {
    Api::namespaced(lab.user(LabUser(user)).await, TENANT)
}

async fn decide(
    lab: &Lab,
    user: &'static str,
    name: &str,
    verdict: &str,
) -> Result<crds::PromotionRequest, kube::Error> {
    requests_as(lab, user)
        .await
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"decision": {"verdict": verdict}}})),
        )
        .await
}

fn assert_refused(result: Result<crds::PromotionRequest, kube::Error>, who: &str, needle: &str) {
    match result {
        Err(kube::Error::Api(status)) => {
            assert!(
                status.code == 403 || status.code == 400 || status.code == 422,
                "{who}: unexpected status {status:?}"
            );
            assert!(
                needle.is_empty() || status.message.to_lowercase().contains(needle),
                "{who}: the refusal should mention {needle:?}: {}",
                status.message
            );
        }
        Ok(pr) => panic!(
            "{who} must be refused, but the request was admitted: {:?}",
            pr.spec.decision
        ),
        Err(e) => panic!("{who}: unexpected error {e}"),
    }
}

const ENFORCE: &str = "enforcement: {tags: enforce, promotion: enforce, stages: enforce}\n";

#[tokio::test]
async fn untagged_api_is_refused_with_every_missing_tag_and_a_tagged_one_admitted() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    // tenant-retail, so this registration never judges the promotion test's requests.
    let tenant = "tenant-retail";
    let _webhook = WebhookProcess::start(&lab, "tags", ENFORCE, &[tenant]).await;
    let name = unique("refunds");

    let (ok, _, stderr) = lab.kubectl_with_input(
        LabUser("retail-devops"),
        &["apply", "-f", "-"],
        Some(&api_yaml(&name, tenant, false)),
    );
    assert!(!ok, "an untagged Api must be refused");
    assert!(stderr.contains("denied the request"), "{stderr}");
    for tag in [
        "environment",
        "project",
        "cost-center",
        "ttl",
        "auto-teardown",
        "data-class",
        "owner",
    ] {
        assert!(
            stderr.contains(&format!("apim.cab-i.com/{tag}")),
            "the refusal must name {tag}: {stderr}"
        );
    }

    let (ok, stdout, stderr) = lab.kubectl_with_input(
        LabUser("retail-devops"),
        &["apply", "-f", "-"],
        Some(&api_yaml(&name, tenant, true)),
    );
    assert!(ok, "a tagged Api must be admitted: {stderr}");
    assert!(stdout.contains("created"), "{stdout}");
    let api: Api<crds::Api> = Api::namespaced(lab.admin(), tenant);
    let stored = api.get(&name).await.expect("stored");
    let actor = stored
        .metadata
        .annotations
        .unwrap_or_default()
        .get("apim.cab-i.com/actor")
        .cloned();
    assert_eq!(
        actor.as_deref(),
        Some("retail-devops"),
        "the acting user is stamped"
    );
    api.delete(&name, &DeleteParams::default())
        .await
        .expect("cleanup");
}

#[tokio::test]
async fn warn_mode_admits_and_kubectl_prints_the_warnings() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let ns = TestNamespace::create(&lab, "warn", &[]).await;
    let _webhook =
        WebhookProcess::start(&lab, "warn", "enforcement: {tags: warn}\n", &[ns.name()]).await;
    let (ok, _, stderr) = lab.kubectl_with_input(
        LabUser("admin"),
        &["apply", "-f", "-"],
        Some(&api_yaml("untagged", ns.name(), false)),
    );
    assert!(ok, "warn mode admits: {stderr}");
    assert!(
        stderr.contains("Warning:"),
        "kubectl prints the admission warnings: {stderr}"
    );
    assert!(stderr.contains("apim.cab-i.com/owner"), "{stderr}");
}

#[tokio::test]
async fn promotion_requests_follow_the_role_matrix_and_nobody_approves_their_own() {
    let lab = lab_or_skip!();
    crd_install::install(&lab).await;
    let webhook = WebhookProcess::start(&lab, "promo", ENFORCE, &[TENANT]).await;
    let pp = PostParams::default();

    // The requester is stamped from the authenticated user; a forged one is replaced.
    let a = unique("pr-cpi");
    let created = requests_as(&lab, "finance-cpi")
        .await
        .create(&pp, &promotion(&a, Some("someone-else")))
        .await
        .expect("create");
    assert_eq!(
        created.spec.requester.as_deref(),
        Some("finance-cpi"),
        "requester stamped from userInfo"
    );

    assert_refused(
        decide(&lab, "finance-cpi", &a, "Approved").await,
        "the requester (a CPI)",
        "",
    );
    assert_refused(
        decide(&lab, "finance-devops", &a, "Approved").await,
        "the tenant's DevOps",
        "",
    );
    assert_refused(
        decide(&lab, "retail-cpi", &a, "Approved").await,
        "another tenant's CPI",
        "",
    );
    assert_refused(
        decide(&lab, "argocd", &a, "Approved").await,
        "the Argo CD user",
        "",
    );
    let approved = decide(&lab, "finance-cpi-2", &a, "Approved")
        .await
        .expect("another CPI of the tenant approves");
    let decision = approved.spec.decision.expect("decision");
    assert_eq!(
        decision.approver.as_deref(),
        Some("finance-cpi-2"),
        "approver stamped from userInfo"
    );
    assert_refused(
        decide(&lab, "cpi-admin", &a, "Rejected").await,
        "re-deciding",
        "",
    );

    // The CPI admin approves any tenant's request, except their own.
    let b = unique("pr-devops");
    let created = requests_as(&lab, "finance-devops")
        .await
        .create(&pp, &promotion(&b, None))
        .await
        .expect("devops creates");
    assert_eq!(created.spec.requester.as_deref(), Some("finance-devops"));
    decide(&lab, "cpi-admin", &b, "Approved")
        .await
        .expect("the CPI admin approves");
    let c = unique("pr-admin");
    requests_as(&lab, "cpi-admin")
        .await
        .create(&pp, &promotion(&c, None))
        .await
        .expect("cpi-admin creates");
    assert_refused(
        decide(&lab, "cpi-admin", &c, "Approved").await,
        "the CPI admin on their own request",
        "",
    );

    // Argo CD creates, never approves; nobody rewrites the requester; users never write status.
    let d = unique("pr-argocd");
    let created = requests_as(&lab, "argocd")
        .await
        .create(&pp, &promotion(&d, None))
        .await
        .expect("argocd creates");
    assert_eq!(created.spec.requester.as_deref(), Some("argocd"));
    let forged = requests_as(&lab, "finance-devops")
        .await
        .patch(
            &d,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"requester": "finance-devops"}})),
        )
        .await;
    assert_refused(forged, "changing the requester", "");
    let admin: Api<crds::PromotionRequest> = Api::namespaced(lab.admin(), TENANT);
    let faked = admin
        .patch_status(
            &d,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Approved"}})),
        )
        .await;
    assert_refused(faked, "a user writing status", "");

    for name in [&a, &b, &c, &d] {
        let _ = admin.delete(name, &DeleteParams::default()).await;
    }
    let log = webhook.logs();
    assert!(!log.contains("panicked"), "webhook log: {log}");
}
