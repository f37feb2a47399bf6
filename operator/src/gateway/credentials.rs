//! Credentials for the gateway's REST admin API, read from a Kubernetes Secret.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use k8s_openapi::ByteString;

/// A string that is never printed: its `Debug` and `Display` show `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// How the operator authenticates to a gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayCredentials {
    /// HTTP Basic (`username` + `password`), the gateway's documented scheme.
    Basic {
        /// The gateway user.
        username: String,
        /// Its password.
        password: SecretString,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: SecretString,
    },
}

/// A Secret that does not hold usable gateway credentials.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialsError {
    /// Neither `username`+`password` nor `token` is present.
    #[error(
        "failed to read gateway credentials: the Secret needs keys `username` and `password`, or `token` (found keys: {found})"
    )]
    Missing {
        /// The keys present (values are never shown).
        found: String,
    },
    /// A key is present but empty or not UTF-8.
    #[error("failed to read gateway credentials: key `{key}` is {problem}")]
    Invalid {
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
}

impl GatewayCredentials {
    /// HTTP Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Bearer token credentials.
    pub fn bearer(token: impl Into<SecretString>) -> Self {
        Self::Bearer {
            token: token.into(),
        }
    }

    /// Reads credentials from a Secret's `data`: `username` + `password` (preferred when
    /// both schemes are present) or `token`. Values are trimmed of a trailing newline.
    pub fn from_secret_data(data: &BTreeMap<String, ByteString>) -> Result<Self, CredentialsError> {
        let field = |key: &'static str| -> Result<Option<String>, CredentialsError> {
            let Some(ByteString(bytes)) = data.get(key) else {
                return Ok(None);
            };
            let text = std::str::from_utf8(bytes).map_err(|_| CredentialsError::Invalid {
                key,
                problem: "not UTF-8",
            })?;
            let text = text.trim_end_matches(['\r', '\n']);
            if text.is_empty() {
                return Err(CredentialsError::Invalid {
                    key,
                    problem: "empty",
                });
            }
            Ok(Some(text.to_owned()))
        };
        match (field("username")?, field("password")?, field("token")?) {
            (Some(username), Some(password), _) => Ok(Self::basic(username, password)),
            (_, _, Some(token)) => Ok(Self::bearer(token)),
            _ => Err(CredentialsError::Missing {
                found: if data.is_empty() {
                    "none".to_owned()
                } else {
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            }),
        }
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        match self {
            Self::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            Self::Bearer { token } => format!("Bearer {}", token.expose()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, ByteString> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteString(v.as_bytes().to_vec())))
            .collect()
    }

    #[test]
    fn reads_basic_and_bearer() {
        let basic = GatewayCredentials::from_secret_data(&data(&[
            ("username", "Administrator"),
            ("password", "manage\n"),
        ]));
        assert_eq!(
            basic,
            Ok(GatewayCredentials::basic("Administrator", "manage"))
        );
        let bearer = GatewayCredentials::from_secret_data(&data(&[("token", "t0k")]));
        assert_eq!(bearer, Ok(GatewayCredentials::bearer("t0k")));
        assert_eq!(
            GatewayCredentials::basic("Administrator", "manage").authorization(),
            "Basic QWRtaW5pc3RyYXRvcjptYW5hZ2U="
        );
        assert_eq!(
            GatewayCredentials::bearer("t0k").authorization(),
            "Bearer t0k"
        );
    }

    #[test]
    fn rejects_incomplete_or_invalid_secrets() {
        let missing = GatewayCredentials::from_secret_data(&data(&[("username", "a")]));
        assert_eq!(
            missing,
            Err(CredentialsError::Missing {
                found: "username".into()
            })
        );
        let empty = GatewayCredentials::from_secret_data(&data(&[("token", "")]));
        assert_eq!(
            empty,
            Err(CredentialsError::Invalid {
                key: "token",
                problem: "empty"
            })
        );
        let mut bad = BTreeMap::new();
        bad.insert("token".to_owned(), ByteString(vec![0xff, 0xfe]));
        assert!(matches!(
            GatewayCredentials::from_secret_data(&bad),
            Err(CredentialsError::Invalid { key: "token", .. })
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let basic = GatewayCredentials::basic("Administrator", "manage");
        let text = format!("{basic:?}");
        assert!(text.contains("Administrator"));
        assert!(!text.contains("manage"), "{text}");
        let bearer = format!("{:?}", GatewayCredentials::bearer("s3cr3t"));
        assert!(!bearer.contains("s3cr3t"), "{bearer}");
    }
}
