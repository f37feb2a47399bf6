//! Command line of `apim-operator`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Kubernetes operator reconciling APIM resources onto webMethods API Gateways.
#[derive(Debug, Parser)]
#[command(name = "apim-operator", version, about)]
pub struct Cli {
    /// What to do (default: run the operator).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Configuration file (YAML); `APIM_*` environment variables override it.
    #[arg(long, global = true, env = "APIM_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers (the default).
    Run,
    /// OpenAPI tools.
    Openapi {
        /// The OpenAPI tool to run.
        #[command(subcommand)]
        command: OpenapiCommand,
    },
}

/// OpenAPI subcommands.
#[derive(Debug, Subcommand)]
pub enum OpenapiCommand {
    /// Convert an OpenAPI 3.1 document to 3.0 (2.0 and 3.0 pass through), printing every
    /// change on stderr. Exit code 1 when the document is refused.
    Convert {
        /// Input document (JSON or YAML).
        input: PathBuf,
        /// Output file (default: stdout), in the input's format.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}
