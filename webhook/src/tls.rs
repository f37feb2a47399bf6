//! Serving certificates: from files (a mounted Secret, cert-manager friendly) reloaded when
//! they change, or self-generated at start (a CA and a serving certificate written to
//! `--cert-dir`, so scripts can read `ca.crt`).
//!
//! A self-generated CA is kept across restarts: when `ca.key` exists in the directory, it is
//! reused and only the serving certificate is issued anew, so a registered `caBundle` stays
//! valid.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use thiserror::Error;
use time::OffsetDateTime;

use crate::metrics::{Metrics, ResultLabels};

/// Why certificates could not be prepared.
#[derive(Debug, Error)]
pub enum TlsError {
    /// Key or certificate generation failed.
    #[error("failed to generate {what}: {source}")]
    Generate {
        /// What was being generated.
        what: &'static str,
        /// Underlying error.
        source: rcgen::Error,
    },
    /// A file could not be read or written.
    #[error("failed to {verb} {path}: {source}")]
    Io {
        /// `read` or `write`.
        verb: &'static str,
        /// The file.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
}

/// Files of a self-generated certificate set.
#[derive(Debug, Clone)]
pub struct GeneratedCerts {
    /// PEM of the CA certificate (the `caBundle`).
    pub ca_pem: String,
    /// `ca.crt`.
    pub ca_path: PathBuf,
    /// `tls.crt`: the serving certificate.
    pub cert_path: PathBuf,
    /// `tls.key`: its private key.
    pub key_path: PathBuf,
}

/// Installs ring as the process-wide rustls crypto provider (idempotent).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn io_err<'a>(verb: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> TlsError + 'a {
    move |source| TlsError::Io {
        verb,
        path: path.display().to_string(),
        source,
    }
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), TlsError> {
    // Write to a temporary file and rename, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(io_err("write", &tmp))?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err("write", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io_err("write", path))
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "apim-webhook CA");
    dn.push(DnType::OrganizationName, "cab-i apim");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

/// Generates (or reuses) a CA and issues a serving certificate for 127.0.0.1, localhost and
/// the given DNS names, written to `dir` as `ca.crt`, `ca.key`, `tls.crt`, `tls.key`.
pub fn self_signed(dir: &Path, dns_names: &[String]) -> Result<GeneratedCerts, TlsError> {
    std::fs::create_dir_all(dir).map_err(io_err("write", dir))?;
    let ca_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");

    let existing = match (
        std::fs::read_to_string(&ca_key_path),
        std::fs::read_to_string(&ca_path),
    ) {
        (Ok(key_pem), Ok(ca_pem)) => KeyPair::from_pem(&key_pem).ok().map(|k| (k, ca_pem)),
        _ => None,
    };
    let (ca_key, ca_pem) = match existing {
        Some(found) => {
            tracing::info!(path = %ca_path.display(), "Reusing CA");
            found
        }
        None => {
            let key = KeyPair::generate().map_err(|source| TlsError::Generate {
                what: "CA key",
                source,
            })?;
            let cert = ca_params()
                .self_signed(&key)
                .map_err(|source| TlsError::Generate {
                    what: "CA certificate",
                    source,
                })?;
            let pem = cert.pem();
            write_file(&ca_key_path, &key.serialize_pem(), true)?;
            write_file(&ca_path, &pem, false)?;
            tracing::info!(path = %ca_path.display(), "Generated CA");
            (key, pem)
        }
    };
    let issuer = Issuer::new(ca_params(), ca_key);

    let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    sans.extend(dns_names.iter().filter(|n| !n.is_empty()).cloned());
    let mut params = CertificateParams::new(sans).map_err(|source| TlsError::Generate {
        what: "serving certificate parameters",
        source,
    })?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        dns_names.first().map_or("apim-webhook", String::as_str),
    );
    params.distinguished_name = dn;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365);
    let key = KeyPair::generate().map_err(|source| TlsError::Generate {
        what: "serving key",
        source,
    })?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|source| TlsError::Generate {
            what: "serving certificate",
            source,
        })?;
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    write_file(&key_path, &key.serialize_pem(), true)?;
    write_file(&cert_path, &cert.pem(), false)?;
    Ok(GeneratedCerts {
        ca_pem,
        ca_path,
        cert_path,
        key_path,
    })
}

fn mtimes(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(cert)?, m(key)?))
}

/// Polls the certificate and key files and reloads the TLS configuration when either
/// changes (a Secret update, a cert-manager renewal). Runs until the task is dropped.
pub async fn watch_files(
    config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
    metrics: std::sync::Arc<Metrics>,
) {
    let mut last = mtimes(&cert, &key);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = mtimes(&cert, &key);
        if now.is_none() || now == last {
            continue;
        }
        match config.reload_from_pem_file(&cert, &key).await {
            Ok(()) => {
                last = now;
                metrics
                    .tls_reloads
                    .get_or_create(&ResultLabels { result: "ok" })
                    .inc();
                tracing::info!(cert = %cert.display(), "Reloaded certificate");
            }
            Err(e) => {
                // Keep serving the previous certificate; a half-written pair is retried.
                metrics
                    .tls_reloads
                    .get_or_create(&ResultLabels { result: "error" })
                    .inc();
                tracing::warn!(error = %e, cert = %cert.display(), "failed to reload certificate");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("apim-webhook-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn generates_and_reuses_the_ca() {
        let dir = tmpdir("reuse");
        let a = self_signed(&dir, &["apim-webhook.apim-system.svc".to_owned()]).unwrap();
        let serving_a = std::fs::read_to_string(&a.cert_path).unwrap();
        let b = self_signed(&dir, &[]).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem, "CA must be reused");
        assert_ne!(
            serving_a,
            std::fs::read_to_string(&b.cert_path).unwrap(),
            "serving certificate is issued anew"
        );
        assert!(a.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a.key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key must not be world readable");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
