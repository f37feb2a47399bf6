//! `Api.spec.stages` never contains prod: production is reached only through an approved
//! PromotionRequest. Defence in depth beside the CRD's CEL rule.

use kube::core::DynamicObject;
use kube::core::admission::AdmissionRequest;

use super::{Finding, RuleSet};

/// The production environment.
pub const PROD: &str = "prod";

/// Adds a finding when the Api lists prod among its stages.
pub fn check(req: &AdmissionRequest<DynamicObject>, out: &mut Vec<Finding>) {
    let Some(obj) = req.object.as_ref() else {
        return;
    };
    let Some(stages) = obj
        .data
        .get("spec")
        .and_then(|s| s.get("stages"))
        .and_then(|s| s.as_array())
    else {
        return;
    };
    let listed_prod = stages
        .iter()
        .filter_map(|s| s.as_str())
        .any(|s| s.trim().eq_ignore_ascii_case(PROD));
    if listed_prod {
        out.push(Finding::new(
            RuleSet::Stages,
            "spec.stages must not contain prod (rule: production is reached only through an \
             approved PromotionRequest); remove it, e.g. stages: [dev, staging], and create a \
             PromotionRequest with targetEnvironment: prod",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::rules::tests::req;

    fn findings(stages: serde_json::Value) -> Vec<Finding> {
        let mut spec = fixtures::api_create();
        fixtures::set_path(spec.object.as_mut().unwrap(), &["spec", "stages"], stages);
        let mut out = vec![];
        check(&req(&spec), &mut out);
        out
    }

    #[test]
    fn prod_in_stages_is_a_violation() {
        let f = findings(serde_json::json!(["dev", "prod"]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule_set, RuleSet::Stages);
        assert!(f[0].message.contains("PromotionRequest"));
        assert_eq!(findings(serde_json::json!(["PROD"])).len(), 1);
    }

    #[test]
    fn other_stages_and_odd_shapes_pass() {
        assert!(findings(serde_json::json!(["dev", "staging", "sandbox", "demo"])).is_empty());
        assert!(findings(serde_json::json!([])).is_empty());
        assert!(findings(serde_json::json!("prod-like string")).is_empty());
        assert!(findings(serde_json::json!([1, null, {"a": "prod"}])).is_empty());
    }

    #[test]
    fn update_adding_prod_is_a_violation() {
        let mut spec = fixtures::api_create();
        spec.operation = "UPDATE";
        spec.old_object = Some(fixtures::api(&["dev"]));
        spec.object = Some(fixtures::api(&["dev", "prod"]));
        let mut out = vec![];
        check(&req(&spec), &mut out);
        assert_eq!(out.len(), 1);
    }
}
