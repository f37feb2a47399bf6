//! Property tests: the request parser and the decision functions never panic, and every
//! answer is a well-formed AdmissionReview (HTTP 200 or 400, never anything else).

use std::sync::Arc;

use apim_webhook::config::Config;
use apim_webhook::fixtures;
use apim_webhook::metrics::Metrics;
use apim_webhook::rules::Policy;
use apim_webhook::server::{App, Endpoint};
use proptest::prelude::*;
use serde_json::{Value, json};

fn app() -> App {
    App::new(
        Policy::new(Config::default()).expect("default config builds"),
        Arc::new(Metrics::new()),
    )
}

fn check_answer(status: u16, out: &[u8]) -> Result<Value, TestCaseError> {
    prop_assert!(status == 200 || status == 400, "status {status}");
    let v: Value = serde_json::from_slice(out)
        .map_err(|e| TestCaseError::fail(format!("answer is not JSON: {e}")))?;
    prop_assert_eq!(&v["apiVersion"], "admission.k8s.io/v1");
    prop_assert_eq!(&v["kind"], "AdmissionReview");
    prop_assert!(v["response"]["allowed"].is_boolean());
    Ok(v)
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        Just(json!("prod")),
        Just(json!("Approved")),
        Just(json!("finance-devops")),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("spec".to_owned()),
                    Just("decision".to_owned()),
                    Just("requester".to_owned()),
                    Just("labels".to_owned()),
                    Just("annotations".to_owned()),
                    Just("stages".to_owned()),
                    "[a-z]{1,8}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Paths into a fixture review that the fuzzer overwrites.
const PATHS: &[&[&str]] = &[
    &["request", "object"],
    &["request", "oldObject"],
    &["request", "object", "spec"],
    &["request", "object", "spec", "decision"],
    &["request", "object", "spec", "requester"],
    &["request", "object", "spec", "stages"],
    &["request", "object", "metadata"],
    &["request", "object", "metadata", "labels"],
    &["request", "object", "metadata", "annotations"],
    &["request", "oldObject", "spec", "decision"],
    &["request", "userInfo"],
    &["request", "userInfo", "groups"],
    &["request", "operation"],
    &["request", "kind"],
    &["request", "kind", "kind"],
    &["request", "subResource"],
    &["request", "namespace"],
    &["request", "uid"],
    &["request", "dryRun"],
    &["request"],
    &["apiVersion"],
];

fn base(i: usize) -> fixtures::ReviewSpec {
    match i % 4 {
        0 => fixtures::promotion_approve(),
        1 => fixtures::promotion_create(),
        2 => fixtures::api_create(),
        _ => fixtures::deployment(fixtures::tag_labels()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let app = app();
        for ep in [Endpoint::Validate, Endpoint::Mutate] {
            let (status, out) = app.review(ep, &body);
            check_answer(status, &out)?;
        }
    }

    #[test]
    fn mangled_reviews_never_panic(
        which in 0usize..4,
        edits in prop::collection::vec((0usize..PATHS.len(), arb_json()), 1..4),
        mutate in any::<bool>(),
    ) {
        let mut review = fixtures::review_json(&base(which));
        for (p, value) in edits {
            fixtures::set_path(&mut review, PATHS[p], value);
        }
        let body = serde_json::to_vec(&review).expect("serialisable");
        let ep = if mutate { Endpoint::Mutate } else { Endpoint::Validate };
        let (status, out) = app().review(ep, &body);
        let v = check_answer(status, &out)?;
        // A parsed request always gets its uid back.
        if status == 200 && v["response"]["status"]["reason"] != "InvalidRequest" {
            prop_assert_eq!(&v["response"]["uid"], &review["request"]["uid"]);
        }
    }

    #[test]
    fn decisions_are_deterministic_and_dry_run_neutral(which in 0usize..4, dry in any::<bool>()) {
        let app = app();
        let mut spec = base(which);
        spec.dry_run = false;
        let (_, wet) = app.review(Endpoint::Validate, &fixtures::review_body(&spec));
        spec.dry_run = dry;
        let (_, again) = app.review(Endpoint::Validate, &fixtures::review_body(&spec));
        prop_assert_eq!(wet, again);
    }
}
