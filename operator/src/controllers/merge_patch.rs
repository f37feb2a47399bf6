//! RFC 7386 JSON merge patches computed as the difference of two documents.
//!
//! Status writes send only what changed, as a merge patch: on the API server a merge patch
//! of a few fields costs a fraction of a server-side apply of the whole status (no
//! managed-fields sets to compute), and a small body a fraction of a large one.
//!
//! A merge patch cannot set a member to `null` (null removes it), so documents are compared
//! with their null members left out: the patch turns `old` into `new` as the API server
//! stores them.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when they are the same (null
/// members ignored).
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, ov) in o.iter().filter(|(_, v)| !v.is_null()) {
                match n.get(k).filter(|v| !v.is_null()) {
                    None => {
                        patch.insert(k.clone(), Value::Null);
                    }
                    Some(nv) => {
                        if let Some(d) = diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                }
            }
            for (k, nv) in n.iter().filter(|(_, v)| !v.is_null()) {
                if o.get(k).is_none_or(Value::is_null) {
                    patch.insert(k.clone(), without_nulls(nv));
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if without_nulls(old) == without_nulls(new) => None,
        _ => Some(without_nulls(new)),
    }
}

/// `v` with the null members of its objects removed (at any depth; array items are kept,
/// their objects cleaned).
pub fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Applies a merge patch (RFC 7386) to `target`.
pub fn apply(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        apply(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_documents_need_no_patch() {
        let doc = json!({"a": 1, "b": {"c": [1, 2]}, "n": null});
        assert_eq!(diff(&doc, &doc), None);
        assert_eq!(diff(&doc, &json!({"a": 1, "b": {"c": [1, 2]}})), None);
    }

    #[test]
    fn only_changed_members_are_sent_and_removed_ones_are_nulled() {
        let old = json!({"observedGeneration": 1, "conditions": [{"type": "Ready"}],
                         "environments": {"dev": {"id": "x"}, "staging": {"id": "y"}},
                         "revision": "r1"});
        let new = json!({"observedGeneration": 1, "conditions": [{"type": "Ready"}],
                         "environments": {"dev": {"id": "x"}},
                         "revision": "r2", "owedEvents": 2});
        assert_eq!(
            diff(&old, &new),
            Some(json!({"environments": {"staging": null}, "revision": "r2", "owedEvents": 2}))
        );
    }

    #[test]
    fn a_changed_list_is_sent_whole() {
        let old = json!({"conditions": [{"type": "A"}, {"type": "B"}]});
        let new = json!({"conditions": [{"type": "A"}]});
        assert_eq!(
            diff(&old, &new),
            Some(json!({"conditions": [{"type": "A"}]}))
        );
    }

    #[test]
    fn from_nothing_the_whole_document_without_nulls() {
        let new = json!({"a": {"b": null, "c": 1}, "d": [ {"e": null} ]});
        assert_eq!(
            diff(&Value::Null, &new),
            Some(json!({"a": {"c": 1}, "d": [{}]}))
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn applying_the_diff_turns_old_into_new(old in value(), new in value()) {
            let mut patched = without_nulls(&old);
            match diff(&old, &new) {
                Some(patch) => {
                    apply(&mut patched, &patch);
                    prop_assert_eq!(patched, without_nulls(&new));
                }
                None => prop_assert_eq!(patched, without_nulls(&new)),
            }
        }
    }
}
