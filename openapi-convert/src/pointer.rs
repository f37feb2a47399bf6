//! JSON pointers (RFC 6901) and local `$ref` fragments (RFC 3986).

use serde_json::Value;

/// Appends `/token` to `ptr`, escaping `~` and `/`; returns the length to truncate back to.
pub(crate) fn push(ptr: &mut String, token: &str) -> usize {
    let len = ptr.len();
    ptr.push('/');
    for c in token.chars() {
        match c {
            '~' => ptr.push_str("~0"),
            '/' => ptr.push_str("~1"),
            c => ptr.push(c),
        }
    }
    len
}

/// Appends `/index` to `ptr`; returns the length to truncate back to.
pub(crate) fn push_index(ptr: &mut String, index: usize) -> usize {
    use std::fmt::Write as _;
    let len = ptr.len();
    // Writing into a String cannot fail.
    let _ = write!(ptr, "/{index}");
    len
}

/// `ptr` with `/token` appended.
pub(crate) fn join(ptr: &str, token: &str) -> String {
    let mut s = String::with_capacity(ptr.len() + token.len() + 1);
    s.push_str(ptr);
    push(&mut s, token);
    s
}

/// Decodes the percent-escapes of a URI fragment. `None` if they are malformed
/// or do not decode to UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes a JSON pointer as a URI fragment (`#/a/b%20c`).
pub(crate) fn to_fragment(pointer: &str) -> String {
    let mut s = String::with_capacity(pointer.len() + 1);
    s.push('#');
    for b in pointer.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b);
        if keep {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// A local reference, as its target inside the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocalRef {
    /// `#` or `#/json/pointer` (decoded).
    Pointer(String),
    /// `#name`: a plain-name fragment (`$anchor`).
    Anchor(String),
}

/// Parses `#...` references; `None` for references to other documents and
/// for malformed escapes (the caller tells those apart with `is_local`).
pub(crate) fn parse_local(reference: &str) -> Option<LocalRef> {
    let fragment = reference.strip_prefix('#')?;
    let decoded = percent_decode(fragment)?;
    if decoded.is_empty() || decoded.starts_with('/') {
        Some(LocalRef::Pointer(decoded))
    } else {
        Some(LocalRef::Anchor(decoded))
    }
}

/// Resolves a decoded JSON pointer; unlike `Value::pointer` it rejects
/// malformed escapes (`~2`) instead of reading them literally.
pub(crate) fn resolve<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(doc);
    }
    let rest = pointer.strip_prefix('/')?;
    let mut cur = doc;
    for raw in rest.split('/') {
        let token = unescape(raw)?;
        cur = match cur {
            Value::Object(map) => map.get(token.as_str())?,
            Value::Array(items) => {
                if token.len() > 1 && token.starts_with('0') {
                    return None;
                }
                items.get(token.parse::<usize>().ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_owned());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// How a pointer reads in a message: the root is `(root)`.
pub(crate) fn display(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(root)"
    } else {
        pointer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn push_escapes_tokens() {
        let mut p = String::new();
        let a = push(&mut p, "paths");
        push(&mut p, "/pets/{id}~x");
        assert_eq!(p, "/paths/~1pets~1{id}~0x");
        p.truncate(a);
        assert_eq!(p, "");
        push_index(&mut p, 3);
        assert_eq!(p, "/3");
    }

    #[test]
    fn local_refs_parse_and_resolve() {
        let doc = json!({"components": {"schemas": {"a b": {"x": [1, 2]}, "c/d": 1}}});
        let Some(LocalRef::Pointer(p)) = parse_local("#/components/schemas/a%20b/x/1") else {
            panic!("not a pointer");
        };
        assert_eq!(resolve(&doc, &p), Some(&json!(2)));
        assert_eq!(resolve(&doc, "/components/schemas/c~1d"), Some(&json!(1)));
        assert_eq!(resolve(&doc, "/components/schemas/a b/x/01"), None);
        assert_eq!(resolve(&doc, "/components/~2"), None);
        assert_eq!(parse_local("#foo"), Some(LocalRef::Anchor("foo".into())));
        assert_eq!(parse_local("other.yaml#/a"), None);
        assert_eq!(parse_local("#/a%zz"), None);
    }

    #[test]
    fn fragments_round_trip() {
        let f = to_fragment("/components/schemas/a b~1c");
        assert_eq!(f, "#/components/schemas/a%20b~1c");
        assert_eq!(
            parse_local(&f),
            Some(LocalRef::Pointer("/components/schemas/a b~1c".into()))
        );
    }
}
