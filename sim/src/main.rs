//! `apim-sim`: serves the gateway and AWX simulators on one port.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use apim_sim::SimConfig;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Simulators of the webMethods API Gateway (one per environment) and AWX.
#[derive(Debug, Parser)]
#[command(name = "apim-sim", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "APIM_SIM_LISTEN", default_value = "127.0.0.1:5555")]
    listen: SocketAddr,
    /// Environments, each with its own gateway under /gateways/{env}.
    #[arg(
        long,
        env = "APIM_SIM_ENVIRONMENTS",
        value_delimiter = ',',
        default_value = "dev,staging,sandbox,demo,prod"
    )]
    environments: Vec<String>,
    /// Gateway Basic user.
    #[arg(long, env = "APIM_SIM_GATEWAY_USER", default_value = "Administrator")]
    gateway_user: String,
    /// Gateway Basic password.
    #[arg(long, env = "APIM_SIM_GATEWAY_PASSWORD", default_value = "manage")]
    gateway_password: String,
    /// Gateway bearer token accepted besides Basic (none by default).
    #[arg(long, env = "APIM_SIM_GATEWAY_TOKEN")]
    gateway_token: Option<String>,
    /// Environments whose gateway accepts OpenAPI 3.1 (default: none, like 10.15).
    #[arg(
        long = "gateway-31",
        env = "APIM_SIM_GATEWAY_31",
        value_delimiter = ','
    )]
    gateway_31: Vec<String>,
    /// AWX bearer token.
    #[arg(long, env = "APIM_SIM_AWX_TOKEN", default_value = "awx-token")]
    awx_token: String,
    /// AWX Basic user.
    #[arg(long, env = "APIM_SIM_AWX_USER", default_value = "admin")]
    awx_user: String,
    /// AWX Basic password.
    #[arg(long, env = "APIM_SIM_AWX_PASSWORD", default_value = "password")]
    awx_password: String,
    /// Directory of the playbooks the job templates run.
    #[arg(long, env = "APIM_SIM_PLAYBOOK_DIR", default_value = "ansible")]
    playbook_dir: PathBuf,
    /// The ansible-playbook executable.
    #[arg(
        long,
        env = "APIM_SIM_ANSIBLE_PLAYBOOK",
        default_value = "ansible-playbook"
    )]
    ansible_playbook: PathBuf,
    /// Job timeout in seconds (every template).
    #[arg(long, env = "APIM_SIM_JOB_TIMEOUT", default_value_t = 300)]
    job_timeout: u64,
    /// Per-template timeout, `name=seconds` (repeatable).
    #[arg(long = "template-timeout", value_parser = parse_template_timeout)]
    template_timeouts: Vec<(String, u64)>,
    /// Extra environment variable for every job, `KEY=VALUE` (repeatable).
    #[arg(long = "job-env", value_parser = parse_key_value)]
    job_env: Vec<(String, String)>,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s}"))?;
    if k.is_empty() {
        return Err(format!("empty variable name in {s}"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

fn parse_template_timeout(s: &str) -> Result<(String, u64), String> {
    let (name, secs) = s
        .split_once('=')
        .ok_or_else(|| format!("expected name=seconds, got {s}"))?;
    let secs = secs
        .parse()
        .map_err(|e| format!("invalid seconds in {s}: {e}"))?;
    Ok((name.to_owned(), secs))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let environments: Vec<String> = args
        .environments
        .iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let gateway_31: BTreeSet<String> = args
        .gateway_31
        .iter()
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect();
    let playbook_dir = if args.playbook_dir.is_absolute() {
        args.playbook_dir.clone()
    } else {
        std::env::current_dir()?.join(&args.playbook_dir)
    };
    let config = SimConfig {
        environments,
        gateway_user: args.gateway_user,
        gateway_password: args.gateway_password,
        gateway_token: args.gateway_token,
        gateway_31,
        awx_token: args.awx_token,
        awx_user: args.awx_user,
        awx_password: args.awx_password,
        playbook_dir,
        ansible_playbook: args.ansible_playbook,
        job_timeout: Duration::from_secs(args.job_timeout),
        template_timeouts: args
            .template_timeouts
            .into_iter()
            .map(|(n, s)| (n, Duration::from_secs(s)))
            .collect(),
        job_env: args.job_env.into_iter().collect(),
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        environments = ?config.environments,
        playbook_dir = %config.playbook_dir.display(),
        "apim-sim listening"
    );
    apim_sim::serve(config, listener, shutdown_signal()).await?;
    tracing::info!("apim-sim stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
