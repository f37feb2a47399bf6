//! AdmissionReview in and out: parsing a request body, classifying what it is about, and
//! serialising a response. Nothing here panics on any input.

use k8s_openapi::ByteString;
use kube::core::DynamicObject;
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use serde::Deserialize;

/// A request body that could not be turned into an [`AdmissionRequest`].
#[derive(Debug, Clone)]
pub struct Rejected {
    /// HTTP status to answer with: 200 when a review could be parsed (the API server reads
    /// the response), 400 when the body is not an AdmissionReview at all.
    pub http_status: u16,
    /// An invalid response (`allowed: false`, reason `InvalidRequest`), uid copied where known.
    pub response: Box<AdmissionResponse>,
}

/// Just enough of an AdmissionReview to answer a malformed one.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    request: Option<EnvelopeRequest>,
}

#[derive(Deserialize)]
struct EnvelopeRequest {
    #[serde(default)]
    uid: Option<serde_json::Value>,
}

fn invalid(status: u16, uid: Option<String>, reason: String) -> Rejected {
    let mut response = AdmissionResponse::invalid(reason);
    if let Some(uid) = uid {
        response.uid = uid;
    }
    Rejected {
        http_status: status,
        response: Box::new(response),
    }
}

/// Parses an `admission.k8s.io/v1` AdmissionReview body into its request.
pub fn parse(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, Rejected> {
    match serde_json::from_slice::<AdmissionReview<DynamicObject>>(body) {
        Ok(review) => {
            if review.types.api_version != META_API_VERSION_V1 || review.types.kind != META_KIND {
                let uid = review.request.as_ref().map(|r| r.uid.clone());
                return Err(invalid(
                    200,
                    uid,
                    format!(
                        "expected an {META_API_VERSION_V1} {META_KIND}, got apiVersion {:?} kind {:?}",
                        review.types.api_version, review.types.kind
                    ),
                ));
            }
            let request: AdmissionRequest<DynamicObject> = review
                .try_into()
                .map_err(|_| invalid(200, None, "the AdmissionReview has no request".to_owned()))?;
            if request.uid.is_empty() {
                return Err(invalid(200, None, "the request has no uid".to_owned()));
            }
            Ok(request)
        }
        Err(full_error) => Err(match serde_json::from_slice::<Envelope>(body) {
            // A JSON object at least: answer as a review, with the uid when there is one.
            Ok(env) => {
                let uid = env
                    .request
                    .as_ref()
                    .and_then(|r| r.uid.as_ref())
                    .and_then(|u| u.as_str())
                    .map(str::to_owned);
                let reason = if env.request.is_none() {
                    "the AdmissionReview has no request".to_owned()
                } else if env.api_version.as_deref() != Some(META_API_VERSION_V1)
                    || env.kind.as_deref() != Some(META_KIND)
                {
                    format!(
                        "expected an {META_API_VERSION_V1} {META_KIND}, got apiVersion {:?} kind {:?}",
                        env.api_version, env.kind
                    )
                } else {
                    format!("malformed AdmissionReview: {full_error}")
                };
                invalid(200, uid, reason)
            }
            Err(_) => invalid(
                400,
                None,
                format!("the body is not an AdmissionReview: {full_error}"),
            ),
        }),
    }
}

/// Serialises a response as an AdmissionReview body.
///
/// kube's `AdmissionResponse` serialises `patch` as an array of numbers; the API documents a
/// base64 string (Go `[]byte`), so a patch is re-encoded that way.
pub fn to_body(response: AdmissionResponse) -> Vec<u8> {
    let patch = response.patch.clone();
    let review = response.into_review();
    let encoded = match patch {
        None => serde_json::to_vec(&review),
        Some(bytes) => serde_json::to_value(&review).and_then(|mut v| {
            v["response"]["patch"] = serde_json::to_value(ByteString(bytes))?;
            serde_json::to_vec(&v)
        }),
    };
    match encoded {
        Ok(body) => body,
        // Serialising these plain structs cannot fail in practice; answer a fixed
        // well-formed denial rather than panic if it ever does.
        Err(e) => format!(
            r#"{{"apiVersion":"{META_API_VERSION_V1}","kind":"{META_KIND}","response":{{"uid":"","allowed":false,"status":{{"status":"Failure","message":"failed to serialise response: {}","reason":"InternalError","code":500}}}}}}"#,
            e.to_string().replace(['"', '\\'], "'")
        )
        .into_bytes(),
    }
}

/// The kinds of this project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApimKind {
    /// `Api`
    Api,
    /// `Application`
    Application,
    /// `Subscription`
    Subscription,
    /// `PromotionRequest`
    PromotionRequest,
    /// `TeardownPolicy` (cluster-scoped)
    TeardownPolicy,
}

/// What a request is about, from `request.kind` (the GVK the rule matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One of our kinds.
    Apim(ApimKind),
    /// A workload in an opted-in namespace (`Deployment`, `StatefulSet`, `DaemonSet`, `Job`,
    /// `CronJob`, `Pod`).
    Workload,
    /// A Namespace (opted in by its own label).
    Namespace,
    /// Anything else: admitted untouched.
    Other,
}

/// Classifies a request by its GVK.
pub fn target(req: &AdmissionRequest<DynamicObject>) -> Target {
    let (group, kind) = (req.kind.group.as_str(), req.kind.kind.as_str());
    match (group, kind) {
        (crds::GROUP, "Api") => Target::Apim(ApimKind::Api),
        (crds::GROUP, "Application") => Target::Apim(ApimKind::Application),
        (crds::GROUP, "Subscription") => Target::Apim(ApimKind::Subscription),
        (crds::GROUP, "PromotionRequest") => Target::Apim(ApimKind::PromotionRequest),
        (crds::GROUP, "TeardownPolicy") => Target::Apim(ApimKind::TeardownPolicy),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job" | "CronJob")
        | ("", "Pod") => Target::Workload,
        ("", "Namespace") => Target::Namespace,
        _ => Target::Other,
    }
}

/// Stable name of an operation for metrics and logs.
pub fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn response_json(r: &Rejected) -> serde_json::Value {
        serde_json::from_slice(&to_body(*r.response.clone())).unwrap()
    }

    #[test]
    fn parses_a_valid_review() {
        let body = fixtures::review_body(&fixtures::api_create());
        let req = parse(&body).unwrap();
        assert_eq!(req.kind.kind, "Api");
        assert_eq!(target(&req), Target::Apim(ApimKind::Api));
    }

    #[test]
    fn garbage_is_400() {
        for body in [
            &b"not json"[..],
            b"",
            b"[1,2]",
            b"\"str\"",
            b"{\"apiVersion\":",
        ] {
            let r = parse(body).unwrap_err();
            assert_eq!(r.http_status, 400, "{:?}", String::from_utf8_lossy(body));
            assert!(!r.response.allowed);
            let v = response_json(&r);
            assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(v["response"]["status"]["reason"], "InvalidRequest");
        }
    }

    #[test]
    fn missing_request_is_invalid_200() {
        let r =
            parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#).unwrap_err();
        assert_eq!(r.http_status, 200);
        assert!(r.response.result.message.contains("no request"));
    }

    #[test]
    fn wrong_api_version_is_invalid_200_with_uid() {
        let mut review = fixtures::review_json(&fixtures::api_create());
        review["apiVersion"] = "admission.k8s.io/v1beta1".into();
        let r = parse(&serde_json::to_vec(&review).unwrap()).unwrap_err();
        assert_eq!(r.http_status, 200);
        assert_eq!(r.response.uid, fixtures::UID);
        assert!(r.response.result.message.contains("v1beta1"));
    }

    #[test]
    fn malformed_request_keeps_uid() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"abc","operation":"EXPLODE"}}"#;
        let r = parse(body).unwrap_err();
        assert_eq!(r.http_status, 200);
        assert_eq!(r.response.uid, "abc");
        assert!(r.response.result.message.contains("malformed"));
        let v = response_json(&r);
        assert_eq!(v["response"]["uid"], "abc");
        assert_eq!(v["response"]["allowed"], false);
    }

    #[test]
    fn classifies_targets() {
        let mut req = parse(&fixtures::review_body(&fixtures::api_create())).unwrap();
        for (g, k, t) in [
            ("apps", "Deployment", Target::Workload),
            ("batch", "CronJob", Target::Workload),
            ("", "Pod", Target::Workload),
            ("", "Namespace", Target::Namespace),
            ("", "ConfigMap", Target::Other),
            ("apim.cab-i.com", "Unknown", Target::Other),
            (
                "apim.cab-i.com",
                "TeardownPolicy",
                Target::Apim(ApimKind::TeardownPolicy),
            ),
        ] {
            req.kind.group = g.to_owned();
            req.kind.kind = k.to_owned();
            assert_eq!(target(&req), t, "{g}/{k}");
        }
    }
}
