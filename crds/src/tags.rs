//! The tag model: mandatory labels and annotations of every APIM resource, their typed form
//! ([`Tags`]) and their pure validation ([`validate`], [`validate_meta`]), shared by the
//! admission webhook (refuses bad input) and the controllers (teardown, `tag-violation`).
//!
//! Mandatory, as labels: [`ENVIRONMENT_LABEL`], [`PROJECT_LABEL`], [`COST_CENTER_LABEL`],
//! [`TTL_LABEL`], [`AUTO_TEARDOWN_LABEL`], [`DATA_CLASS_LABEL`]; as an annotation (an e-mail
//! is not a valid label value): [`OWNER_ANNOTATION`]. `created_at` is
//! `metadata.creationTimestamp`.

use std::{collections::BTreeMap, fmt};

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{
    common::{DataClass, Environment},
    duration::{DurationParseError, ShortDuration},
};

/// Label: the environment (`dev|staging|sandbox|demo|prod`).
pub const ENVIRONMENT_LABEL: &str = "apim.cab-i.com/environment";
/// Label: the project the resource belongs to (a label value, e.g. `payments`).
pub const PROJECT_LABEL: &str = "apim.cab-i.com/project";
/// Label: the cost center billed for the resource (a label value, e.g. `CC-1234`).
pub const COST_CENTER_LABEL: &str = "apim.cab-i.com/cost-center";
/// Label: time to live after `metadata.creationTimestamp` (e.g. `7d`, `36h`, `30d`).
pub const TTL_LABEL: &str = "apim.cab-i.com/ttl";
/// Label: whether the teardown may delete the resource once expired (`true|false`).
pub const AUTO_TEARDOWN_LABEL: &str = "apim.cab-i.com/auto-teardown";
/// Label: data classification (`public|internal|confidential|restricted`).
pub const DATA_CLASS_LABEL: &str = "apim.cab-i.com/data-class";
/// Annotation: the owner's e-mail address (notified before a teardown).
pub const OWNER_ANNOTATION: &str = "apim.cab-i.com/owner";
/// Annotation stamped by the admission webhook with the user who made the last change.
pub const ACTOR_ANNOTATION: &str = "apim.cab-i.com/actor";
/// Namespace label (`"true"`) that switches the tag rules on for plain workloads of that
/// namespace and for the Namespace itself.
pub const ENFORCE_TAGS_LABEL: &str = "apim.cab-i.com/enforce-tags";

/// The mandatory labels, in the order violations are reported.
pub const MANDATORY_LABELS: [&str; 6] = [
    ENVIRONMENT_LABEL,
    PROJECT_LABEL,
    COST_CENTER_LABEL,
    TTL_LABEL,
    AUTO_TEARDOWN_LABEL,
    DATA_CLASS_LABEL,
];

/// Longest TTL outside prod, in days.
pub const MAX_TTL_DAYS_OUTSIDE_PROD: u32 = 30;

/// The TTL tag value: a [`ShortDuration`] (`7d`, `36h`, `90m`, `30d`).
pub type Ttl = ShortDuration;

/// The validated tags of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tags {
    /// `apim.cab-i.com/environment`.
    pub environment: Environment,
    /// `apim.cab-i.com/project`.
    pub project: String,
    /// `apim.cab-i.com/cost-center`.
    pub cost_center: String,
    /// `apim.cab-i.com/ttl`.
    pub ttl: Ttl,
    /// `apim.cab-i.com/auto-teardown`.
    pub auto_teardown: bool,
    /// `apim.cab-i.com/data-class`.
    pub data_class: DataClass,
    /// `apim.cab-i.com/owner` (annotation): an e-mail address.
    pub owner: String,
}

impl Tags {
    /// When the object expires: `created + ttl` (`created` is `metadata.creationTimestamp`).
    /// Saturates at the largest representable time instead of overflowing.
    pub fn expiry(&self, created: DateTime<Utc>) -> DateTime<Utc> {
        created
            .checked_add_signed(self.ttl.as_time_delta())
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Whether the object is expired at `now`.
    pub fn is_expired(&self, created: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        now >= self.expiry(created)
    }

    /// Prod and `data-class=restricted` are never auto-deleted.
    pub fn is_protected(&self) -> bool {
        self.environment.is_prod() || self.data_class == DataClass::Restricted
    }

    /// Whether a teardown may delete the object once expired: `auto-teardown=true` and not
    /// protected.
    pub fn teardown_eligible(&self) -> bool {
        self.auto_teardown && !self.is_protected()
    }

    /// Checks that the environment label equals the environment a spec names (for kinds that
    /// have one: Application, Subscription).
    pub fn check_spec_environment(&self, spec: Environment) -> Result<(), TagViolation> {
        if self.environment == spec {
            Ok(())
        } else {
            Err(TagViolation::EnvironmentMismatch {
                label: self.environment.to_string(),
                spec: spec.to_string(),
            })
        }
    }

    /// The six mandatory labels, as they are written on an object.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (ENVIRONMENT_LABEL.to_owned(), self.environment.to_string()),
            (PROJECT_LABEL.to_owned(), self.project.clone()),
            (COST_CENTER_LABEL.to_owned(), self.cost_center.clone()),
            (TTL_LABEL.to_owned(), self.ttl.to_string()),
            (
                AUTO_TEARDOWN_LABEL.to_owned(),
                self.auto_teardown.to_string(),
            ),
            (DATA_CLASS_LABEL.to_owned(), self.data_class.to_string()),
        ])
    }

    /// The mandatory annotation (owner), as it is written on an object.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(OWNER_ANNOTATION.to_owned(), self.owner.clone())])
    }
}

/// Where a tag lives on an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagLocation {
    /// In `metadata.labels`.
    Label,
    /// In `metadata.annotations`.
    Annotation,
}

impl fmt::Display for TagLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TagLocation::Label => "label",
            TagLocation::Annotation => "annotation",
        })
    }
}

/// One broken tag rule. The message names the tag, the rule and a valid example.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TagViolation {
    /// A mandatory tag is absent.
    #[error("{location} {tag} is required but missing; add it, e.g. {tag}: {example:?}")]
    Missing {
        /// The tag key.
        tag: &'static str,
        /// Label or annotation.
        location: TagLocation,
        /// A valid value.
        example: &'static str,
    },
    /// The value is not one of the tag's enumerated values.
    #[error("label {tag}: {value:?} is not one of {allowed}; use e.g. {example:?}")]
    NotAllowed {
        /// The tag key.
        tag: &'static str,
        /// The rejected value.
        value: String,
        /// The accepted values, separated by `|`.
        allowed: &'static str,
        /// A valid value.
        example: &'static str,
    },
    /// The value is not a valid, non-empty Kubernetes label value.
    #[error(
        "label {tag}: {value:?} is not a valid label value (1 to 63 letters, digits, '-', '_' or \
         '.', beginning and ending with a letter or digit); use e.g. {example:?}"
    )]
    InvalidLabelValue {
        /// The tag key.
        tag: &'static str,
        /// The rejected value.
        value: String,
        /// A valid value.
        example: &'static str,
    },
    /// The TTL is not a duration like `7d`, `36h`, `90m`.
    #[error(
        "label apim.cab-i.com/ttl: {value:?} {reason} (a TTL is a whole number of days, hours \
         or minutes); use e.g. \"7d\", \"36h\" or \"90m\""
    )]
    InvalidTtl {
        /// The rejected value.
        value: String,
        /// What is wrong with it.
        reason: DurationParseError,
    },
    /// The TTL exceeds 30 days on an object outside prod.
    #[error(
        "label apim.cab-i.com/ttl: {value:?} exceeds the 30-day limit outside prod; use e.g. \"30d\""
    )]
    TtlTooLong {
        /// The rejected value.
        value: String,
    },
    /// The environment label disagrees with the environment in the spec (Application,
    /// Subscription): the label drives teardown and protection, so both must agree.
    #[error(
        "label apim.cab-i.com/environment: {label:?} does not match spec.environment {spec:?}; \
         use e.g. {spec:?}"
    )]
    EnvironmentMismatch {
        /// The label's environment.
        label: String,
        /// The spec's environment.
        spec: String,
    },
    /// The owner annotation is not an e-mail address.
    #[error(
        "annotation apim.cab-i.com/owner: {value:?} is not an e-mail address; use e.g. \
         \"jane.doe@cab-i.com\""
    )]
    InvalidOwner {
        /// The rejected value.
        value: String,
    },
}

impl TagViolation {
    /// The tag key the violation is about.
    pub fn tag(&self) -> &'static str {
        match self {
            TagViolation::Missing { tag, .. }
            | TagViolation::NotAllowed { tag, .. }
            | TagViolation::InvalidLabelValue { tag, .. } => tag,
            TagViolation::InvalidTtl { .. } | TagViolation::TtlTooLong { .. } => TTL_LABEL,
            TagViolation::InvalidOwner { .. } => OWNER_ANNOTATION,
            TagViolation::EnvironmentMismatch { .. } => ENVIRONMENT_LABEL,
        }
    }
}

/// Every violation of one object, in tag order. Never empty when returned by [`validate`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.0))]
pub struct TagViolations(pub Vec<TagViolation>);

fn join(violations: &[TagViolation]) -> String {
    violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl TagViolations {
    /// The violations.
    pub fn iter(&self) -> std::slice::Iter<'_, TagViolation> {
        self.0.iter()
    }

    /// How many rules are broken.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags concerned, in order, without repeats.
    pub fn tags(&self) -> Vec<&'static str> {
        let mut tags: Vec<&'static str> = Vec::new();
        for v in &self.0 {
            if !tags.contains(&v.tag()) {
                tags.push(v.tag());
            }
        }
        tags
    }
}

impl IntoIterator for TagViolations {
    type Item = TagViolation;
    type IntoIter = std::vec::IntoIter<TagViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a TagViolations {
    type Item = &'a TagViolation;
    type IntoIter = std::slice::Iter<'a, TagViolation>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Validates the tags of an object's metadata. See [`validate`].
pub fn validate_meta(meta: &ObjectMeta) -> Result<Tags, TagViolations> {
    let empty = BTreeMap::new();
    validate(
        meta.labels.as_ref().unwrap_or(&empty),
        meta.annotations.as_ref().unwrap_or(&empty),
    )
}

/// Validates the mandatory tags: all present, well formed (known enumerated values, valid
/// label values, a TTL like `7d`, an e-mail owner), TTL at most 30 days outside prod.
/// Returns every violation at once. Pure and total: never panics, whatever the input.
pub fn validate(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<Tags, TagViolations> {
    let mut violations = Vec::new();
    let label = |tag: &str| labels.get(tag).map(String::as_str);

    let environment = label(ENVIRONMENT_LABEL).map(|v| {
        v.parse::<Environment>()
            .map_err(|_| TagViolation::NotAllowed {
                tag: ENVIRONMENT_LABEL,
                value: v.to_owned(),
                allowed: "dev|staging|sandbox|demo|prod",
                example: "dev",
            })
    });
    let env_is_prod = matches!(environment, Some(Ok(Environment::Prod)));
    let label_value = |tag: &'static str, example: &'static str| {
        label(tag).map(|v| {
            if !v.is_empty() && is_label_value(v) {
                Ok(v.to_owned())
            } else {
                Err(TagViolation::InvalidLabelValue {
                    tag,
                    value: v.to_owned(),
                    example,
                })
            }
        })
    };
    let project = label_value(PROJECT_LABEL, "payments");
    let cost_center = label_value(COST_CENTER_LABEL, "CC-1234");
    let ttl = label(TTL_LABEL).map(|v| match Ttl::parse(v) {
        // Without a valid environment, the stricter rule applies.
        Ok(ttl)
            if !env_is_prod && ttl.as_secs() > u64::from(MAX_TTL_DAYS_OUTSIDE_PROD) * 86_400 =>
        {
            Err(TagViolation::TtlTooLong {
                value: v.to_owned(),
            })
        }
        Ok(ttl) => Ok(ttl),
        Err(reason) => Err(TagViolation::InvalidTtl {
            value: v.to_owned(),
            reason,
        }),
    });
    let auto_teardown = label(AUTO_TEARDOWN_LABEL).map(|v| match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(TagViolation::NotAllowed {
            tag: AUTO_TEARDOWN_LABEL,
            value: v.to_owned(),
            allowed: "true|false",
            example: "true",
        }),
    });
    let data_class = label(DATA_CLASS_LABEL).map(|v| {
        v.parse::<DataClass>()
            .map_err(|_| TagViolation::NotAllowed {
                tag: DATA_CLASS_LABEL,
                value: v.to_owned(),
                allowed: "public|internal|confidential|restricted",
                example: "internal",
            })
    });
    let owner = annotations.get(OWNER_ANNOTATION).map(|v| {
        if is_email(v) {
            Ok(v.clone())
        } else {
            Err(TagViolation::InvalidOwner { value: v.clone() })
        }
    });

    // Each tag: present and valid, or one violation (missing or malformed), in tag order.
    fn check<T>(
        value: Option<Result<T, TagViolation>>,
        tag: &'static str,
        location: TagLocation,
        example: &'static str,
        violations: &mut Vec<TagViolation>,
    ) -> Option<T> {
        match value {
            Some(Ok(v)) => Some(v),
            Some(Err(violation)) => {
                violations.push(violation);
                None
            }
            None => {
                violations.push(TagViolation::Missing {
                    tag,
                    location,
                    example,
                });
                None
            }
        }
    }
    use TagLocation::{Annotation, Label};
    let v = &mut violations;
    let tags = (
        check(environment, ENVIRONMENT_LABEL, Label, "dev", v),
        check(project, PROJECT_LABEL, Label, "payments", v),
        check(cost_center, COST_CENTER_LABEL, Label, "CC-1234", v),
        check(ttl, TTL_LABEL, Label, "7d", v),
        check(auto_teardown, AUTO_TEARDOWN_LABEL, Label, "true", v),
        check(data_class, DATA_CLASS_LABEL, Label, "internal", v),
        check(owner, OWNER_ANNOTATION, Annotation, "jane.doe@cab-i.com", v),
    );
    match tags {
        (
            Some(environment),
            Some(project),
            Some(cost_center),
            Some(ttl),
            Some(auto_teardown),
            Some(data_class),
            Some(owner),
        ) => Ok(Tags {
            environment,
            project,
            cost_center,
            ttl,
            auto_teardown,
            data_class,
            owner,
        }),
        _ => Err(TagViolations(violations)),
    }
}

/// Whether `s` is a Kubernetes label value: at most 63 characters, empty or beginning and
/// ending with an ASCII letter or digit, with `-`, `_`, `.`, letters and digits between.
pub fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return true;
    }
    b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether `s` is a plausible e-mail address: `local@domain`, at most 254 characters, an
/// unquoted dot-atom local part, a domain of at least two DNS labels with an alphabetic top
/// level. Deliberately strict: no spaces, comments, quoted parts or IP literals.
pub fn is_email(s: &str) -> bool {
    if s.len() > 254 {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atom_char));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn good_labels() -> BTreeMap<String, String> {
        BTreeMap::from(
            [
                (ENVIRONMENT_LABEL, "dev"),
                (PROJECT_LABEL, "payments"),
                (COST_CENTER_LABEL, "CC-1234"),
                (TTL_LABEL, "7d"),
                (AUTO_TEARDOWN_LABEL, "true"),
                (DATA_CLASS_LABEL, "internal"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
    }

    fn good_annotations() -> BTreeMap<String, String> {
        BTreeMap::from([(OWNER_ANNOTATION.to_owned(), "jane.doe@cab-i.com".to_owned())])
    }

    fn with(label: &str, value: &str) -> BTreeMap<String, String> {
        let mut l = good_labels();
        l.insert(label.to_owned(), value.to_owned());
        l
    }

    fn violations(labels: &BTreeMap<String, String>) -> Vec<TagViolation> {
        validate(labels, &good_annotations())
            .expect_err("expected violations")
            .0
    }

    #[test]
    fn accepts_complete_tags() {
        let tags = validate(&good_labels(), &good_annotations()).unwrap();
        assert_eq!(
            tags,
            Tags {
                environment: Environment::Dev,
                project: "payments".into(),
                cost_center: "CC-1234".into(),
                ttl: Ttl::days(7).unwrap(),
                auto_teardown: true,
                data_class: DataClass::Internal,
                owner: "jane.doe@cab-i.com".into(),
            }
        );
        // Round trip through the object form.
        assert_eq!(validate(&tags.labels(), &tags.annotations()), Ok(tags));
    }

    #[test]
    fn validate_meta_reads_labels_and_annotations() {
        let meta = ObjectMeta {
            labels: Some(good_labels()),
            annotations: Some(good_annotations()),
            ..Default::default()
        };
        assert!(validate_meta(&meta).is_ok());
        let err = validate_meta(&ObjectMeta::default()).unwrap_err();
        assert_eq!(err.len(), 7, "{err}");
        assert_eq!(
            err.tags(),
            [MANDATORY_LABELS.as_slice(), &[OWNER_ANNOTATION]].concat()
        );
        assert!(
            err.iter()
                .all(|v| matches!(v, TagViolation::Missing { .. }))
        );
    }

    #[test]
    fn missing_tags_name_location_and_example() {
        let err = validate(&BTreeMap::new(), &BTreeMap::new()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(
                "label apim.cab-i.com/environment is required but missing; add it, e.g. \
             apim.cab-i.com/environment: \"dev\"; label apim.cab-i.com/project"
            ),
            "{text}"
        );
        assert!(
            text.ends_with(
                "annotation apim.cab-i.com/owner is required but missing; add it, e.g. \
             apim.cab-i.com/owner: \"jane.doe@cab-i.com\""
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("; ").count(),
            7 + 6,
            "7 messages with one inner '; ' each, 6 joins"
        );
    }

    #[test]
    fn ttl_over_30_days_outside_prod() {
        let v = violations(&with(TTL_LABEL, "45d"));
        assert_eq!(
            v,
            [TagViolation::TtlTooLong {
                value: "45d".into()
            }]
        );
        assert_eq!(
            v[0].to_string(),
            "label apim.cab-i.com/ttl: \"45d\" exceeds the 30-day limit outside prod; use e.g. \"30d\""
        );
        assert_eq!(v[0].tag(), TTL_LABEL);
        // 721h is one hour over 30 days; 720h is exactly 30 days.
        assert_eq!(violations(&with(TTL_LABEL, "721h")).len(), 1);
        assert!(validate(&with(TTL_LABEL, "720h"), &good_annotations()).is_ok());
        assert!(validate(&with(TTL_LABEL, "30d"), &good_annotations()).is_ok());
        assert!(validate(&with(TTL_LABEL, "43200m"), &good_annotations()).is_ok());
    }

    #[test]
    fn long_ttl_is_allowed_in_prod_only() {
        let mut labels = with(TTL_LABEL, "365d");
        labels.insert(ENVIRONMENT_LABEL.into(), "prod".into());
        assert_eq!(
            validate(&labels, &good_annotations()).unwrap().ttl,
            Ttl::days(365).unwrap()
        );
        // An unknown environment gets the stricter rule, and both violations are reported.
        labels.insert(ENVIRONMENT_LABEL.into(), "production".into());
        let v = violations(&labels);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(matches!(
            v[0],
            TagViolation::NotAllowed {
                tag: ENVIRONMENT_LABEL,
                ..
            }
        ));
        assert!(matches!(v[1], TagViolation::TtlTooLong { .. }));
    }

    #[test]
    fn malformed_ttl() {
        for bad in ["7", "0d", "7w", "1h30m", "-1d", "", "1000000m"] {
            let v = violations(&with(TTL_LABEL, bad));
            assert!(
                matches!(&v[..], [TagViolation::InvalidTtl { .. }]),
                "{bad:?}: {v:?}"
            );
            assert!(v[0].to_string().contains("use e.g. \"7d\""));
        }
        let v = violations(&with(TTL_LABEL, "0d"));
        assert_eq!(
            v[0].to_string(),
            "label apim.cab-i.com/ttl: \"0d\" is zero (a TTL is a whole number of days, hours or \
             minutes); use e.g. \"7d\", \"36h\" or \"90m\""
        );
    }

    #[test]
    fn unknown_enumerated_values() {
        for (tag, bad) in [
            (ENVIRONMENT_LABEL, "Prod"),
            (ENVIRONMENT_LABEL, "qa"),
            (AUTO_TEARDOWN_LABEL, "yes"),
            (AUTO_TEARDOWN_LABEL, "True"),
            (DATA_CLASS_LABEL, "secret"),
        ] {
            let v = violations(&with(tag, bad));
            assert!(
                matches!(&v[..], [TagViolation::NotAllowed { tag: t, .. }] if *t == tag),
                "{tag}={bad}: {v:?}"
            );
            assert_eq!(v[0].tag(), tag);
        }
        assert_eq!(
            violations(&with(DATA_CLASS_LABEL, "secret"))[0].to_string(),
            "label apim.cab-i.com/data-class: \"secret\" is not one of \
             public|internal|confidential|restricted; use e.g. \"internal\""
        );
    }

    #[test]
    fn project_and_cost_center_must_be_label_values() {
        for tag in [PROJECT_LABEL, COST_CENTER_LABEL] {
            for bad in [
                "",
                "-payments",
                "pay ments",
                "payments_",
                &"x".repeat(64),
                "é",
            ] {
                let v = violations(&with(tag, bad));
                assert!(
                    matches!(&v[..], [TagViolation::InvalidLabelValue { tag: t, .. }] if *t == tag),
                    "{tag}={bad:?}: {v:?}"
                );
            }
            assert!(validate(&with(tag, "a.b_c-9"), &good_annotations()).is_ok());
            assert!(validate(&with(tag, &"x".repeat(63)), &good_annotations()).is_ok());
        }
    }

    #[test]
    fn owner_must_be_an_email() {
        for bad in [
            "jane",
            "jane@",
            "@cab-i.com",
            "jane@cab-i",
            "jane doe@cab-i.com",
            "jane@@cab-i.com",
            "jane..doe@cab-i.com",
            ".jane@cab-i.com",
            "jane@-cab-i.com",
            "jane@cab-i.c0m",
            " jane@cab-i.com",
            "jane@cab-i.com\n",
        ] {
            let mut annotations = good_annotations();
            annotations.insert(OWNER_ANNOTATION.into(), bad.into());
            let v = validate(&good_labels(), &annotations).unwrap_err().0;
            assert_eq!(
                v,
                [TagViolation::InvalidOwner { value: bad.into() }],
                "{bad:?}"
            );
            assert_eq!(v[0].tag(), OWNER_ANNOTATION);
        }
        for good in [
            "jane.doe@cab-i.com",
            "ops+apim@payments.example.org",
            "a@b.io",
        ] {
            assert!(is_email(good), "{good}");
        }
    }

    #[test]
    fn every_violation_at_once_in_tag_order() {
        let labels = BTreeMap::from(
            [
                (ENVIRONMENT_LABEL, "qa"),
                (TTL_LABEL, "90d"),
                (AUTO_TEARDOWN_LABEL, "maybe"),
                (DATA_CLASS_LABEL, "top-secret"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        let annotations = BTreeMap::from([(OWNER_ANNOTATION.to_owned(), "nobody".to_owned())]);
        let err = validate(&labels, &annotations).unwrap_err();
        assert_eq!(
            err.tags(),
            [
                ENVIRONMENT_LABEL,
                PROJECT_LABEL,
                COST_CENTER_LABEL,
                TTL_LABEL,
                AUTO_TEARDOWN_LABEL,
                DATA_CLASS_LABEL,
                OWNER_ANNOTATION
            ]
        );
        assert_eq!(err.len(), 7);
    }

    #[test]
    fn expiry_is_creation_plus_ttl() {
        let created = DateTime::parse_from_rfc3339("2026-11-25T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut tags = validate(&with(TTL_LABEL, "36h"), &good_annotations()).unwrap();
        let expected = DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(tags.expiry(created), expected);
        assert!(!tags.is_expired(created, expected - chrono::TimeDelta::seconds(1)));
        assert!(tags.is_expired(created, expected));
        // Saturates instead of overflowing.
        tags.ttl = Ttl::days(999_999).unwrap();
        assert_eq!(
            tags.expiry(DateTime::<Utc>::MAX_UTC),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn environment_label_must_match_the_spec() {
        let tags = validate(&good_labels(), &good_annotations()).unwrap();
        assert_eq!(tags.check_spec_environment(Environment::Dev), Ok(()));
        let err = tags
            .check_spec_environment(Environment::Staging)
            .unwrap_err();
        assert_eq!(err.tag(), ENVIRONMENT_LABEL);
        assert_eq!(
            err.to_string(),
            "label apim.cab-i.com/environment: \"dev\" does not match spec.environment \
             \"staging\"; use e.g. \"staging\""
        );
    }

    #[test]
    fn protection_and_teardown_eligibility() {
        let base = validate(&good_labels(), &good_annotations()).unwrap();
        assert!(!base.is_protected());
        assert!(base.teardown_eligible());
        let prod = Tags {
            environment: Environment::Prod,
            ..base.clone()
        };
        assert!(prod.is_protected() && !prod.teardown_eligible());
        let restricted = Tags {
            data_class: DataClass::Restricted,
            ..base.clone()
        };
        assert!(restricted.is_protected() && !restricted.teardown_eligible());
        for dc in [
            DataClass::Public,
            DataClass::Internal,
            DataClass::Confidential,
        ] {
            for env in [
                Environment::Dev,
                Environment::Staging,
                Environment::Sandbox,
                Environment::Demo,
            ] {
                let t = Tags {
                    environment: env,
                    data_class: dc,
                    ..base.clone()
                };
                assert!(!t.is_protected(), "{env} {dc}");
            }
        }
        let opted_out = Tags {
            auto_teardown: false,
            ..base
        };
        assert!(!opted_out.teardown_eligible());
    }

    fn arb_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        let key = prop_oneof![
            Just(ENVIRONMENT_LABEL.to_owned()),
            Just(PROJECT_LABEL.to_owned()),
            Just(COST_CENTER_LABEL.to_owned()),
            Just(TTL_LABEL.to_owned()),
            Just(AUTO_TEARDOWN_LABEL.to_owned()),
            Just(DATA_CLASS_LABEL.to_owned()),
            Just(OWNER_ANNOTATION.to_owned()),
            "\\PC{0,20}",
        ];
        let value = prop_oneof![
            "\\PC{0,80}",
            "[0-9]{0,25}[dhmsw]?",
            "[a-z.+]{1,10}@[a-z-]{1,10}\\.[a-z]{2,3}",
            Just("prod".to_owned()),
            Just("true".to_owned()),
        ];
        proptest::collection::btree_map(key, value, 0..10)
    }

    proptest! {
        #[test]
        fn validate_never_panics(labels in arb_map(), annotations in arb_map()) {
            match validate(&labels, &annotations) {
                Ok(tags) => {
                    // Anything accepted round-trips and obeys the TTL limit.
                    prop_assert!(tags.environment.is_prod() || tags.ttl.as_secs() <= 30 * 86_400);
                    prop_assert_eq!(validate(&tags.labels(), &tags.annotations()), Ok(tags));
                }
                Err(v) => {
                    prop_assert!(!v.is_empty());
                    prop_assert!(!v.to_string().is_empty());
                }
            }
        }

        #[test]
        fn string_checks_never_panic(s in "\\PC*") {
            let _ = is_email(&s);
            let _ = is_label_value(&s);
            let _ = Ttl::parse(&s);
        }
    }
}
