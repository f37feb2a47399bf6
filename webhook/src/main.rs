//! `apim-webhook`: the validating and mutating admission webhook of the APIM operator.
//!
//! ```text
//! apim-webhook --listen 127.0.0.1:8443 --cert-dir /tmp/apim-webhook --config webhook.yaml
//! apim-webhook --tls-cert /certs/tls.crt --tls-key /certs/tls.key      # mounted Secret
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use apim_webhook::config::Config;
use apim_webhook::metrics::Metrics;
use apim_webhook::rules::Policy;
use apim_webhook::server::{self, App};
use apim_webhook::{cabundle, tls};
use axum_server::tls_rustls::RustlsConfig;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Validating and mutating admission webhook of the APIM operator (admission.k8s.io/v1).
#[derive(Debug, Parser)]
#[command(name = "apim-webhook", version)]
struct Args {
    /// Address to serve HTTPS on.
    #[arg(long, env = "APIM_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,

    /// Serving certificate (PEM), e.g. from a mounted Secret; reloaded when it changes.
    #[arg(long, env = "APIM_WEBHOOK_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// Private key of the serving certificate (PEM).
    #[arg(long, env = "APIM_WEBHOOK_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// CA bundle (PEM) to patch into the webhook configurations when certificates come from
    /// files (`--tls-cert`); with self-generated certificates the generated CA is used.
    #[arg(long, env = "APIM_WEBHOOK_TLS_CA")]
    tls_ca: Option<PathBuf>,

    /// Directory for self-generated certificates (ca.crt, ca.key, tls.crt, tls.key), used
    /// when no --tls-cert is given. An existing CA in it is reused.
    #[arg(
        long,
        env = "APIM_WEBHOOK_CERT_DIR",
        default_value = "/tmp/apim-webhook-certs"
    )]
    cert_dir: PathBuf,

    /// Extra DNS names of the self-generated serving certificate (127.0.0.1 and localhost are
    /// always included). Repeat or separate with commas.
    #[arg(
        long,
        env = "APIM_WEBHOOK_SERVICE_DNS",
        value_delimiter = ',',
        default_value = "apim-webhook.apim-system.svc,apim-webhook.apim-system.svc.cluster.local"
    )]
    service_dns: Vec<String>,

    /// Seconds between checks of the certificate files for changes.
    #[arg(long, env = "APIM_WEBHOOK_TLS_RELOAD_SECONDS", default_value_t = 5)]
    tls_reload_seconds: u64,

    /// Configuration file (YAML): enforcement modes, role matrix, operator identity.
    #[arg(long, env = "APIM_WEBHOOK_CONFIG")]
    config: Option<PathBuf>,

    /// At start, patch the CA bundle into the named webhook configurations (kube client from
    /// the environment: in-cluster or KUBECONFIG).
    #[arg(long, env = "APIM_WEBHOOK_PATCH_CONFIGURATIONS")]
    patch_webhook_configurations: bool,

    /// ValidatingWebhookConfigurations to patch. Repeat or separate with commas.
    #[arg(long, value_delimiter = ',', default_value = "apim-webhook")]
    validating_webhook_configuration: Vec<String>,

    /// MutatingWebhookConfigurations to patch. Repeat or separate with commas.
    #[arg(long, value_delimiter = ',', default_value = "apim-webhook")]
    mutating_webhook_configuration: Vec<String>,

    /// Log format.
    #[arg(long, env = "APIM_WEBHOOK_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,

    /// Seconds in-flight requests get to finish on SIGTERM/SIGINT.
    #[arg(long, default_value_t = 10)]
    shutdown_grace_seconds: u64,
}

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "failed to listen for SIGTERM");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run(args: Args) -> Result<(), String> {
    tls::install_crypto_provider();
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let policy = Policy::new(config).map_err(|e| e.to_string())?;
    tracing::info!(enforcement = ?policy.config.enforcement, "Loaded configuration");
    let metrics = Arc::new(Metrics::new());

    let (tls_config, watch, ca_pem) = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let cfg = RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| format!("failed to load {}: {e}", cert.display()))?;
            let ca = match &args.tls_ca {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| format!("failed to read {}: {e}", p.display()))?,
                ),
                None => None,
            };
            (cfg, Some((cert.clone(), key.clone())), ca)
        }
        _ => {
            let generated =
                tls::self_signed(&args.cert_dir, &args.service_dns).map_err(|e| e.to_string())?;
            tracing::info!(ca = %generated.ca_path.display(), "Self-generated serving certificate");
            let cfg = RustlsConfig::from_pem_file(&generated.cert_path, &generated.key_path)
                .await
                .map_err(|e| format!("failed to load generated certificate: {e}"))?;
            (cfg, None, Some(generated.ca_pem))
        }
    };

    let mut background = Vec::new();
    if let Some((cert, key)) = watch {
        background.push(tokio::spawn(tls::watch_files(
            tls_config.clone(),
            cert,
            key,
            Duration::from_secs(args.tls_reload_seconds.max(1)),
            metrics.clone(),
        )));
    }
    if args.patch_webhook_configurations {
        match ca_pem {
            Some(ca) => background.push(tokio::spawn(cabundle::patch_with_retry(
                args.validating_webhook_configuration.clone(),
                args.mutating_webhook_configuration.clone(),
                ca,
            ))),
            None => tracing::warn!(
                "--patch-webhook-configurations needs --tls-ca with --tls-cert; not patching"
            ),
        }
    }

    let app = Arc::new(App::new(policy, metrics));
    let running = server::start(args.listen, tls_config, app)
        .await
        .map_err(|e| format!("failed to serve on {}: {e}", args.listen))?;
    tracing::info!(addr = %running.addr, "Serving /validate /mutate /healthz /metrics");

    shutdown_signal().await;
    tracing::info!("Shutting down");
    for task in background {
        task.abort();
    }
    running
        .shutdown(Duration::from_secs(args.shutdown_grace_seconds))
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("Stopped");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "apim-webhook failed");
            ExitCode::FAILURE
        }
    }
}
