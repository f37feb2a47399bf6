//! Sample AdmissionReviews for unit tests, integration tests, benchmarks and the load tool.
//! Users and groups are those of the lab (`finance-devops`, `finance-cpi`, `cpi-admin`, …).

use serde_json::{Value, json};

/// The uid of every fixture request.
pub const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";
/// The tenant namespace of the fixtures.
pub const TENANT: &str = "tenant-finance";

/// What to put in an AdmissionReview.
#[derive(Debug, Clone)]
pub struct ReviewSpec {
    /// API group of `request.kind`.
    pub group: &'static str,
    /// Version of `request.kind`.
    pub version: &'static str,
    /// `request.kind.kind`.
    pub kind: &'static str,
    /// Plural resource.
    pub resource: &'static str,
    /// Subresource (`status`), if any.
    pub sub_resource: Option<&'static str>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: &'static str,
    /// Namespace of the request, if namespaced.
    pub namespace: Option<&'static str>,
    /// Name of the object.
    pub name: &'static str,
    /// `userInfo.username`.
    pub username: &'static str,
    /// `userInfo.groups`.
    pub groups: Vec<&'static str>,
    /// `request.object`.
    pub object: Option<Value>,
    /// `request.oldObject`.
    pub old_object: Option<Value>,
    /// `request.dryRun`.
    pub dry_run: bool,
}

/// The full AdmissionReview as JSON.
pub fn review_json(spec: &ReviewSpec) -> Value {
    let mut request = json!({
        "uid": UID,
        "kind": {"group": spec.group, "version": spec.version, "kind": spec.kind},
        "resource": {"group": spec.group, "version": spec.version, "resource": spec.resource},
        "requestKind": {"group": spec.group, "version": spec.version, "kind": spec.kind},
        "requestResource": {"group": spec.group, "version": spec.version, "resource": spec.resource},
        "name": spec.name,
        "operation": spec.operation,
        "userInfo": {"username": spec.username, "uid": "u-1", "groups": spec.groups},
        "object": spec.object,
        "oldObject": spec.old_object,
        "dryRun": spec.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
    });
    if let Some(ns) = spec.namespace {
        request["namespace"] = json!(ns);
    }
    if let Some(sub) = spec.sub_resource {
        request["subResource"] = json!(sub);
        request["requestSubResource"] = json!(sub);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// The AdmissionReview as a request body.
pub fn review_body(spec: &ReviewSpec) -> Vec<u8> {
    serde_json::to_vec(&review_json(spec)).unwrap_or_default()
}

/// Sets a value at a path of objects, creating the intermediate objects.
pub fn set_path(v: &mut Value, path: &[&str], value: Value) {
    let mut cur = v;
    for (i, key) in path.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        if i + 1 == path.len() {
            map.insert((*key).to_owned(), value);
            return;
        }
        cur = map.entry((*key).to_owned()).or_insert_with(|| json!({}));
    }
}

/// Removes the value at a path, if present.
pub fn remove_path(v: &mut Value, path: &[&str]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for key in parents {
        match cur.get_mut(*key) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.remove(*last);
    }
}

/// Well-formed mandatory tags for a dev resource.
pub fn tag_labels() -> Value {
    json!({
        "app": "orders",
        "apim.cab-i.com/environment": "dev",
        "apim.cab-i.com/project": "orders",
        "apim.cab-i.com/cost-center": "cc-1234",
        "apim.cab-i.com/ttl": "7d",
        "apim.cab-i.com/auto-teardown": "true",
        "apim.cab-i.com/data-class": "internal"
    })
}

/// Metadata with all tags.
pub fn tagged_meta(name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({
        "name": name,
        "uid": "9b2e1f0c-0000-4000-8000-000000000001",
        "creationTimestamp": "2026-11-20T10:00:00Z",
        "labels": tag_labels(),
        "annotations": {"apim.cab-i.com/owner": "alice@cab-i.com"}
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

/// A tagged Api.
pub fn api(stages: &[&str]) -> Value {
    json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "Api",
        "metadata": tagged_meta("orders", Some(TENANT)),
        "spec": {
            "displayName": "Orders",
            "version": "1.0.0",
            "backendUrl": "http://orders.tenant-finance.svc:8080",
            "stages": stages
        }
    })
}

/// An Api without any tag.
pub fn untagged_api() -> Value {
    let mut a = api(&["dev"]);
    remove_path(&mut a, &["metadata", "labels"]);
    remove_path(&mut a, &["metadata", "annotations"]);
    a
}

/// `finance-devops` creates a tagged Api in tenant-finance.
pub fn api_create() -> ReviewSpec {
    ReviewSpec {
        group: "apim.cab-i.com",
        version: "v1alpha1",
        kind: "Api",
        resource: "apis",
        sub_resource: None,
        operation: "CREATE",
        namespace: Some(TENANT),
        name: "orders",
        username: "finance-devops",
        groups: vec!["apim:tenant-finance:devops", "system:authenticated"],
        object: Some(api(&["dev", "staging"])),
        old_object: None,
        dry_run: false,
    }
}

/// A PromotionRequest requested by `requester`, optionally decided.
pub fn promotion(requester: Option<&str>, decision: Option<Value>) -> Value {
    let mut spec = json!({
        "apiRef": {"name": "orders"},
        "sourceEnvironment": "staging",
        "targetEnvironment": "prod",
        "revision": "sha256:4f2a9c0d1e",
        "reason": "release 1.4 with the new refund endpoint"
    });
    if let Some(r) = requester {
        spec["requester"] = json!(r);
    }
    if let Some(d) = decision {
        spec["decision"] = d;
    }
    let mut meta = tagged_meta("orders-to-prod", Some(TENANT));
    meta["annotations"]["apim.cab-i.com/actor"] = json!(requester.unwrap_or("someone"));
    json!({
        "apiVersion": "apim.cab-i.com/v1alpha1",
        "kind": "PromotionRequest",
        "metadata": meta,
        "spec": spec,
        "status": {"phase": "Pending"}
    })
}

/// An approval decision.
pub fn approval(approver: Option<&str>) -> Value {
    let mut d = json!({"verdict": "Approved", "comment": "looks good"});
    if let Some(a) = approver {
        d["approver"] = json!(a);
    }
    d
}

/// `finance-devops` creates a PromotionRequest (requester already stamped).
pub fn promotion_create() -> ReviewSpec {
    ReviewSpec {
        group: "apim.cab-i.com",
        version: "v1alpha1",
        kind: "PromotionRequest",
        resource: "promotionrequests",
        sub_resource: None,
        operation: "CREATE",
        namespace: Some(TENANT),
        name: "orders-to-prod",
        username: "finance-devops",
        groups: vec!["apim:tenant-finance:devops", "system:authenticated"],
        object: Some(promotion(Some("finance-devops"), None)),
        old_object: None,
        dry_run: false,
    }
}

/// `finance-cpi` approves `finance-devops`'s request (approver already stamped): the
/// benchmark's reference decision.
pub fn promotion_approve() -> ReviewSpec {
    ReviewSpec {
        operation: "UPDATE",
        username: "finance-cpi",
        groups: vec!["apim:tenant-finance:cpi", "system:authenticated"],
        object: Some(promotion(
            Some("finance-devops"),
            Some(approval(Some("finance-cpi"))),
        )),
        old_object: Some(promotion(Some("finance-devops"), None)),
        ..promotion_create()
    }
}

/// A Deployment with the given labels in an opted-in namespace.
pub fn deployment(labels: Value) -> ReviewSpec {
    ReviewSpec {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        resource: "deployments",
        sub_resource: None,
        operation: "CREATE",
        namespace: Some(TENANT),
        name: "orders",
        username: "finance-devops",
        groups: vec!["apim:tenant-finance:devops", "system:authenticated"],
        object: Some(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "orders", "namespace": TENANT, "labels": labels,
                          "annotations": {"apim.cab-i.com/owner": "alice@cab-i.com"}},
            "spec": {"replicas": 1}
        })),
        old_object: None,
        dry_run: false,
    }
}
