//! The webhook configurations in `deploy/webhook/` parse as Kubernetes objects and say what
//! the design requires (failure policies, timeouts, selectors, rules, endpoints).

use std::path::PathBuf;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
    WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

fn read(form: &str, file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/webhook")
        .join(form)
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // What the lab substitutes: base64 of the CA certificate.
    text.replace("${CA_BUNDLE}", "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==")
}

fn excludes_system_namespaces(sel: &Option<LabelSelector>) {
    let exprs = sel
        .as_ref()
        .and_then(|s| s.match_expressions.as_ref())
        .expect("namespaceSelector with matchExpressions");
    assert!(exprs.iter().any(|e| e.key == "kubernetes.io/metadata.name"
        && e.operator == "NotIn"
        && e.values.as_ref().is_some_and(|v| {
            v.contains(&"kube-system".to_owned()) && v.contains(&"apim-system".to_owned())
        })));
}

fn opted_in(sel: &Option<LabelSelector>) -> bool {
    sel.as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .and_then(|l| l.get("apim.cab-i.com/enforce-tags"))
        .is_some_and(|v| v == "true")
}

fn check_client(form: &str, c: &WebhookClientConfig, path: &str) {
    match form {
        "service" => {
            let s = c.service.as_ref().expect("clientConfig.service");
            assert_eq!(s.namespace, "apim-system");
            assert_eq!(s.path.as_deref(), Some(path));
            assert!(c.url.is_none());
        }
        _ => {
            assert_eq!(
                c.url.as_deref(),
                Some(format!("https://127.0.0.1:8443{path}").as_str())
            );
            assert!(c.ca_bundle.is_some());
        }
    }
}

fn resources(rules: &Option<Vec<RuleWithOperations>>) -> Vec<String> {
    rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect()
}

#[test]
fn validating_configurations() {
    for form in ["service", "url"] {
        let cfg: ValidatingWebhookConfiguration =
            serde_yaml::from_str(&read(form, "validating.yaml")).unwrap();
        let hooks = cfg.webhooks.expect("webhooks");
        assert_eq!(hooks.len(), 3);
        for h in &hooks {
            assert_eq!(h.side_effects, "None");
            assert_eq!(h.timeout_seconds, Some(3));
            assert_eq!(h.admission_review_versions, vec!["v1"]);
            check_client(form, &h.client_config, "/validate");
            excludes_system_namespaces(&h.namespace_selector);
        }
        let ours = &hooks[0];
        assert_eq!(ours.failure_policy.as_deref(), Some("Fail"));
        assert!(!opted_in(&ours.namespace_selector));
        let res = resources(&ours.rules);
        for r in [
            "apis",
            "applications",
            "subscriptions",
            "promotionrequests",
            "promotionrequests/status",
            "teardownpolicies",
        ] {
            assert!(res.contains(&r.to_owned()), "{form}: {r} missing");
        }
        for h in &hooks[1..] {
            assert_eq!(h.failure_policy.as_deref(), Some("Ignore"));
            assert!(opted_in(&h.namespace_selector), "{}", h.name);
        }
        assert_eq!(resources(&hooks[1].rules), vec!["namespaces"]);
        let workloads = resources(&hooks[2].rules);
        for r in [
            "deployments",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "pods",
        ] {
            assert!(workloads.contains(&r.to_owned()), "{form}: {r} missing");
        }
    }
}

#[test]
fn mutating_configurations() {
    for form in ["service", "url"] {
        let cfg: MutatingWebhookConfiguration =
            serde_yaml::from_str(&read(form, "mutating.yaml")).unwrap();
        let hooks = cfg.webhooks.expect("webhooks");
        assert_eq!(hooks.len(), 1);
        let h = &hooks[0];
        assert_eq!(h.failure_policy.as_deref(), Some("Fail"));
        assert_eq!(h.side_effects, "None");
        assert_eq!(h.timeout_seconds, Some(3));
        check_client(form, &h.client_config, "/mutate");
        excludes_system_namespaces(&h.namespace_selector);
        let res = resources(&h.rules);
        assert_eq!(res.len(), 5, "{res:?}");
        assert!(
            !res.iter().any(|r| r.contains('/')),
            "no subresources: {res:?}"
        );
    }
}

#[test]
fn example_config_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/webhook/config.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = apim_webhook::config::Config::from_yaml(&text, "config.yaml").unwrap();
    let defaults = apim_webhook::config::Config {
        tenants: cfg.tenants.clone(),
        ..Default::default()
    };
    assert_eq!(cfg, defaults, "the example documents the defaults");
}
