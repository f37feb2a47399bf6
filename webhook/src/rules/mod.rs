//! Pure decision functions: one validator module per concern, an engine that applies the
//! configured enforcement mode of each rule set, and the mutations.
//!
//! Everything here works on the parsed request and in-memory configuration only.

pub mod mutate;
pub mod promotion;
pub mod stages;
pub mod tags;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};

use crate::config::{Config, ConfigError, Mode};
use crate::review::{Target, target};
use crate::roles::{Principal, RoleMatrix};

/// The rule sets whose enforcement mode is configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleSet {
    /// Mandatory tags on the APIM kinds.
    Tags,
    /// Mandatory tags on opted-in Namespaces and workloads.
    WorkloadTags,
    /// PromotionRequest rules.
    Promotion,
    /// `Api.spec.stages` never contains prod.
    Stages,
}

impl RuleSet {
    /// Name as in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSet::Tags => "tags",
            RuleSet::WorkloadTags => "workloadTags",
            RuleSet::Promotion => "promotion",
            RuleSet::Stages => "stages",
        }
    }
}

/// One violated rule, with a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule set it belongs to.
    pub rule_set: RuleSet,
    /// What is wrong and how to fix it.
    pub message: String,
    /// Already present, unchanged, in the old object of an UPDATE: never denied, so an
    /// object admitted before the rule existed can still be updated (and deleted).
    pub ratcheted: bool,
}

impl Finding {
    /// A new finding.
    pub fn new(rule_set: RuleSet, message: impl Into<String>) -> Self {
        Self {
            rule_set,
            message: message.into(),
            ratcheted: false,
        }
    }
}

/// The outcome of validation after enforcement modes are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Findings in `enforce` mode: the request is denied when there is any.
    pub denied: Vec<Finding>,
    /// Findings in `warn` mode (and ratcheted ones): returned as admission warnings.
    pub warned: Vec<Finding>,
    /// Findings in `audit` mode: admitted, counted and logged.
    pub audited: Vec<Finding>,
}

impl Verdict {
    /// Whether the request is admitted.
    pub fn allowed(&self) -> bool {
        self.denied.is_empty()
    }

    /// Result label for metrics: `allowed`, `warned` or `denied`.
    pub fn result(&self) -> &'static str {
        if !self.denied.is_empty() {
            "denied"
        } else if !self.warned.is_empty() {
            "warned"
        } else {
            "allowed"
        }
    }

    /// The one denial message, every violation in it.
    pub fn message(&self, req: &AdmissionRequest<DynamicObject>) -> String {
        let what = describe(req);
        let n = self.denied.len();
        let list: Vec<&str> = self.denied.iter().map(|f| f.message.as_str()).collect();
        format!(
            "{what} denied by apim-webhook ({n} violation{}): {}",
            if n == 1 { "" } else { "s" },
            list.join("; ")
        )
    }
}

/// `Kind namespace/name` for messages.
pub fn describe(req: &AdmissionRequest<DynamicObject>) -> String {
    let name = if req.name.is_empty() {
        req.object
            .as_ref()
            .and_then(|o| {
                o.metadata
                    .name
                    .as_deref()
                    .or(o.metadata.generate_name.as_deref())
            })
            .unwrap_or("")
    } else {
        req.name.as_str()
    };
    match req.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{} {ns}/{name}", req.kind.kind),
        _ => format!("{} {name}", req.kind.kind),
    }
}

/// The decision engine: configuration and role matrix, built once at start.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The configuration.
    pub config: Config,
    /// The role matrix derived from it.
    pub roles: RoleMatrix,
}

impl Policy {
    /// Builds the engine from a configuration.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Ok(Self {
            roles: RoleMatrix::new(&config),
            config,
        })
    }

    fn mode(&self, rule_set: RuleSet) -> Mode {
        let e = &self.config.enforcement;
        match rule_set {
            RuleSet::Tags => e.tags,
            RuleSet::WorkloadTags => e.workload_tags,
            RuleSet::Promotion => e.promotion,
            RuleSet::Stages => e.stages,
        }
    }

    /// Every rule that applies to the request, before enforcement modes.
    pub fn findings(&self, req: &AdmissionRequest<DynamicObject>) -> Vec<Finding> {
        let mut out = Vec::new();
        if matches!(req.operation, Operation::Delete | Operation::Connect) {
            return out;
        }
        let t = target(req);
        if let Some(sub) = req.sub_resource.as_deref().filter(|s| !s.is_empty()) {
            // Subresources carry no tags or spec of their own; only the status writer rule.
            if sub == "status" && t == Target::Apim(crate::review::ApimKind::PromotionRequest) {
                promotion::check_status_writer(self, req, &mut out);
            }
            return out;
        }
        match t {
            Target::Apim(kind) => {
                tags::check_apim(self, req, &mut out);
                match kind {
                    crate::review::ApimKind::Api => stages::check(req, &mut out),
                    crate::review::ApimKind::PromotionRequest => {
                        promotion::check(self, req, &mut out)
                    }
                    _ => {}
                }
            }
            Target::Workload | Target::Namespace => tags::check_workload(self, req, &mut out),
            Target::Other => {}
        }
        out
    }

    /// Validates a request: findings sorted by enforcement mode.
    pub fn validate(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let mut verdict = Verdict::default();
        for f in self.findings(req) {
            match (self.mode(f.rule_set), f.ratcheted) {
                (Mode::Enforce, false) => verdict.denied.push(f),
                (Mode::Enforce | Mode::Warn, _) => verdict.warned.push(f),
                (Mode::Audit, _) => verdict.audited.push(f),
            }
        }
        verdict
    }

    /// The admission response of `/validate` for a parsed request.
    pub fn validate_response(
        &self,
        req: &AdmissionRequest<DynamicObject>,
    ) -> (AdmissionResponse, Verdict) {
        let verdict = self.validate(req);
        let mut resp = AdmissionResponse::from(req);
        if !verdict.warned.is_empty() {
            resp.warnings = Some(
                verdict
                    .warned
                    .iter()
                    .map(|f| format!("apim-webhook ({}): {}", f.rule_set.as_str(), f.message))
                    .collect(),
            );
        }
        if !verdict.allowed() {
            resp = resp.deny(verdict.message(req));
            // 403 like other authorization-style denials; kubectl prints the message.
            resp.result.code = 403;
            resp.result.reason = "Forbidden".to_owned();
        }
        (resp, verdict)
    }
}

/// The user of a request.
pub fn principal(req: &AdmissionRequest<DynamicObject>) -> Principal<'_> {
    Principal {
        username: req.user_info.username.as_deref().unwrap_or(""),
        groups: req.user_info.groups.as_deref().unwrap_or(&[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, ReviewSpec};
    use crate::review::parse;

    pub(crate) fn req(spec: &ReviewSpec) -> AdmissionRequest<DynamicObject> {
        parse(&fixtures::review_body(spec)).unwrap()
    }

    #[test]
    fn valid_api_is_allowed_without_warnings() {
        let policy = Policy::new(Config::default()).unwrap();
        let (resp, verdict) = policy.validate_response(&req(&fixtures::api_create()));
        assert!(resp.allowed, "{verdict:?}");
        assert!(resp.warnings.is_none());
        assert_eq!(resp.uid, fixtures::UID);
    }

    #[test]
    fn delete_is_always_allowed() {
        let policy = Policy::new(Config::default()).unwrap();
        let mut spec = fixtures::api_create();
        spec.operation = "DELETE";
        spec.old_object = Some(fixtures::untagged_api());
        spec.object = None;
        let (resp, _) = policy.validate_response(&req(&spec));
        assert!(resp.allowed);
    }

    #[test]
    fn all_violations_in_one_message() {
        let policy = Policy::new(Config::default()).unwrap();
        let mut spec = fixtures::api_create();
        spec.object = Some(fixtures::untagged_api());
        fixtures::set_path(
            spec.object.as_mut().unwrap(),
            &["spec", "stages"],
            serde_json::json!(["dev", "prod"]),
        );
        let (resp, verdict) = policy.validate_response(&req(&spec));
        assert!(!resp.allowed);
        assert!(verdict.denied.len() >= 3, "{verdict:?}");
        let msg = &resp.result.message;
        assert!(msg.contains("Api tenant-finance/orders denied"), "{msg}");
        assert!(msg.contains("apim.cab-i.com/environment"), "{msg}");
        assert!(msg.contains("apim.cab-i.com/owner"), "{msg}");
        assert!(msg.contains("prod"), "{msg}");
        assert_eq!(resp.result.code, 403);
    }

    #[test]
    fn warn_and_audit_modes_admit() {
        let mut spec = fixtures::api_create();
        spec.object = Some(fixtures::untagged_api());
        let r = req(&spec);

        let warn =
            Policy::new(Config::from_yaml("enforcement: {tags: warn}", "t").unwrap()).unwrap();
        let (resp, verdict) = warn.validate_response(&r);
        assert!(resp.allowed);
        assert_eq!(verdict.result(), "warned");
        let warnings = resp.warnings.unwrap();
        assert!(warnings.iter().any(|w| w.contains("apim.cab-i.com/owner")));

        let audit =
            Policy::new(Config::from_yaml("enforcement: {tags: audit}", "t").unwrap()).unwrap();
        let (resp, verdict) = audit.validate_response(&r);
        assert!(resp.allowed);
        assert!(resp.warnings.is_none());
        assert!(!verdict.audited.is_empty());
        assert_eq!(verdict.result(), "allowed");
    }

    #[test]
    fn other_kinds_and_connect_are_admitted() {
        let policy = Policy::new(Config::default()).unwrap();
        let mut spec = fixtures::api_create();
        spec.group = "";
        spec.kind = "ConfigMap";
        spec.object = Some(serde_json::json!({"metadata": {"name": "x"}}));
        assert!(policy.validate(&req(&spec)).allowed());
        let mut spec = fixtures::api_create();
        spec.operation = "CONNECT";
        spec.object = Some(fixtures::untagged_api());
        assert!(policy.validate(&req(&spec)).allowed());
    }
}
