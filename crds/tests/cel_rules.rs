//! The CEL rules (`x-kubernetes-validations`) of the generated CRDs, evaluated client-side
//! with kube's CEL evaluator (kube-cel): every rule compiles, and each invariant accepts
//! what it should and refuses what it should, with its message.

use std::collections::BTreeMap;

use crds::{
    Api, ApiSpec, Application, ApplicationSpec, Environment, LocalRef, PromotionRequest,
    PromotionRequestSpec, Subscription, SubscriptionSpec,
    api::{ApiDefinition, ConfigMapKeyRef, DriftPolicy, Driver, Policies},
    application::CredentialType,
    promotion_request::{Decision, Verdict},
};
use kube::{
    CustomResourceExt,
    core::cel::{ValidationErrors, compile_schema, validate_cel, validate_cel_update},
};
use serde_json::Value;

fn schema_of(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("schema"),
    )
    .expect("schema to JSON")
}

fn messages(err: ValidationErrors) -> Vec<String> {
    err.into_vec().into_iter().map(|e| e.message).collect()
}

fn api() -> Api {
    Api::new(
        "payment-api",
        ApiSpec {
            display_name: "Payments".into(),
            version: "1.4.0".into(),
            description: None,
            backend_url: "https://payments.internal.example.com/v1".into(),
            definition: ApiDefinition {
                config_map_ref: Some(ConfigMapKeyRef {
                    name: "payment-api-openapi".into(),
                    key: "openapi.yaml".into(),
                }),
                ..Default::default()
            },
            policies: Policies::default(),
            aliases: vec![],
            active: true,
            stages: vec![Environment::Dev, Environment::Staging],
            driver: Driver::Direct,
            driver_overrides: BTreeMap::new(),
            drift_policy: DriftPolicy::Correct,
        },
    )
}

fn promotion() -> PromotionRequest {
    PromotionRequest::new(
        "payment-api-1-4-0",
        PromotionRequestSpec {
            api_ref: LocalRef::new("payment-api"),
            source_environment: Environment::Staging,
            target_environment: Environment::Prod,
            revision: "sha256:4f2a".into(),
            reason: "Release 1.4.0: refunds endpoint".into(),
            requester: None,
            decision: None,
        },
    )
}

#[test]
fn every_rule_compiles() {
    for crd in crds::all_crds() {
        let compiled = compile_schema(&schema_of(&crd));
        let errors: Vec<String> = compiled
            .compilation_errors()
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", crd.spec.names.kind);
    }
}

#[test]
fn api_valid_object_passes() {
    validate_cel(&api()).unwrap();
}

#[test]
fn api_stages_refuse_prod() {
    let mut a = api();
    a.spec.stages = vec![Environment::Staging, Environment::Prod];
    let err = validate_cel(&a).unwrap_err();
    assert_eq!(messages(err), [crds::api::PROD_IN_STAGES_MESSAGE]);
}

#[test]
fn api_definition_exactly_one_source() {
    let mut a = api();
    a.spec.definition = ApiDefinition::default();
    let m = messages(validate_cel(&a).unwrap_err());
    assert_eq!(
        m,
        ["definition must set exactly one of inline, configMapRef or url"]
    );

    a.spec.definition.inline = Some("openapi: 3.1.0".into());
    validate_cel(&a).unwrap();

    a.spec.definition.url = Some("https://specs.example.com/payments.yaml".into());
    let m = messages(validate_cel(&a).unwrap_err());
    assert_eq!(
        m,
        ["definition must set exactly one of inline, configMapRef or url"]
    );

    a.spec.definition.inline = None;
    validate_cel(&a).unwrap();
}

#[test]
fn api_urls_must_be_http() {
    let mut a = api();
    a.spec.backend_url = "ftp://payments.example.com".into();
    let m = messages(validate_cel(&a).unwrap_err());
    assert_eq!(m.len(), 1);
    assert!(
        m[0].starts_with("backendUrl must be an absolute http or https URL"),
        "{m:?}"
    );

    let mut a = api();
    a.spec.definition = ApiDefinition {
        url: Some("not a url".into()),
        ..Default::default()
    };
    let m = messages(validate_cel(&a).unwrap_err());
    assert_eq!(m, ["definition.url must be an absolute http or https URL"]);
}

#[test]
fn promotion_valid_create_and_stamping() {
    let p = promotion();
    validate_cel(&p).unwrap();
    // The webhook stamps the requester on an object that had none.
    let mut stamped = p.clone();
    stamped.spec.requester = Some("alice".into());
    validate_cel_update(&stamped, &p).unwrap();
    // Deciding (approver stamped) once.
    let mut decided = stamped.clone();
    decided.spec.decision = Some(Decision {
        verdict: Verdict::Approved,
        approver: Some("bob".into()),
        comment: Some("LGTM".into()),
    });
    validate_cel_update(&decided, &stamped).unwrap();
    // Re-applying the same object is fine.
    validate_cel_update(&decided, &decided).unwrap();
}

#[test]
fn promotion_requester_is_immutable() {
    let mut old = promotion();
    old.spec.requester = Some("alice".into());
    let mut new = old.clone();
    new.spec.requester = Some("mallory".into());
    let m = messages(validate_cel_update(&new, &old).unwrap_err());
    assert_eq!(
        m,
        ["spec.requester is immutable: it is stamped from the authenticated user at creation"]
    );
    new.spec.requester = None;
    assert!(
        validate_cel_update(&new, &old).is_err(),
        "removing it is a change too"
    );
}

#[test]
fn promotion_revision_is_immutable() {
    let old = promotion();
    let mut new = old.clone();
    new.spec.revision = "sha256:ffff".into();
    let m = messages(validate_cel_update(&new, &old).unwrap_err());
    assert_eq!(
        m,
        ["spec.revision is immutable: the revision is pinned when the request is created"]
    );
}

#[test]
fn promotion_decision_is_immutable_once_set() {
    let mut old = promotion();
    old.spec.requester = Some("alice".into());
    old.spec.decision = Some(Decision {
        verdict: Verdict::Rejected,
        approver: Some("bob".into()),
        comment: None,
    });
    let mut flipped = old.clone();
    if let Some(d) = flipped.spec.decision.as_mut() {
        d.verdict = Verdict::Approved;
    }
    let m = messages(validate_cel_update(&flipped, &old).unwrap_err());
    assert_eq!(
        m,
        ["spec.decision is immutable once set: create a new PromotionRequest"]
    );
    let mut removed = old.clone();
    removed.spec.decision = None;
    assert!(validate_cel_update(&removed, &old).is_err());
}

#[test]
fn promotion_environments_must_differ() {
    let mut p = promotion();
    p.spec.source_environment = Environment::Prod;
    let m = messages(validate_cel(&p).unwrap_err());
    assert_eq!(
        m,
        ["spec.targetEnvironment must differ from spec.sourceEnvironment"]
    );
}

#[test]
fn promotion_refuses_self_approval() {
    let mut p = promotion();
    p.spec.requester = Some("alice".into());
    p.spec.decision = Some(Decision {
        verdict: Verdict::Approved,
        approver: Some("alice".into()),
        comment: None,
    });
    assert!(p.is_self_approved());
    let m = messages(validate_cel(&p).unwrap_err());
    assert_eq!(
        m,
        [
            "nobody approves their own request: spec.decision.approver must differ from spec.requester"
        ]
    );
}

#[test]
fn subscription_spec_is_immutable() {
    let old = Subscription::new(
        "checkout-web-payment-api",
        SubscriptionSpec {
            api_ref: LocalRef::new("payment-api"),
            application_ref: LocalRef::new("checkout-web"),
            environment: Environment::Dev,
        },
    );
    validate_cel(&old).unwrap();
    validate_cel_update(&old, &old).unwrap();
    let mut new = old.clone();
    new.spec.api_ref.name = "other-api".into();
    new.spec.environment = Environment::Staging;
    let mut m = messages(validate_cel_update(&new, &old).unwrap_err());
    m.sort();
    assert_eq!(
        m,
        [
            "apiRef is immutable; create another Subscription",
            "environment is immutable; create another Subscription"
        ]
    );
}

#[test]
fn application_environment_is_immutable() {
    let old = Application::new(
        "checkout-web",
        ApplicationSpec {
            display_name: "Checkout web".into(),
            description: "The web shop's checkout".into(),
            environment: Environment::Dev,
            credential_type: CredentialType::ApiKey,
            contact_emails: vec![],
            rotation: None,
            secret_name: None,
        },
    );
    validate_cel(&old).unwrap();
    let mut new = old.clone();
    new.spec.display_name = "Checkout".into();
    validate_cel_update(&new, &old).unwrap();
    new.spec.environment = Environment::Prod;
    let m = messages(validate_cel_update(&new, &old).unwrap_err());
    assert_eq!(
        m,
        ["environment is immutable; create another Application for another environment"]
    );
}

#[test]
fn raw_yaml_with_defaults_applied_passes() {
    // The evaluator applies schema defaults, like the API server: a minimal
    // PromotionRequest (source/target defaulted) is valid.
    let crd = PromotionRequest::crd();
    let obj: Value = serde_json::json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "PromotionRequest",
        "metadata": {"name": "p", "namespace": "tenant-finance"},
        "spec": {"apiRef": {"name": "payment-api"}, "revision": "r1", "reason": "ten chars!"}
    });
    kube::core::cel::Validator::new()
        .validate(&schema_of(&crd), &obj, None)
        .unwrap();
}
