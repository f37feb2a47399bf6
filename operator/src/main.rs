use std::process::ExitCode;

use apim_operator::cli::{Cli, Command, OpenapiCommand};
use apim_operator::config::Config;
use clap::Parser;

// Reconciles parse and drop large JSON documents (gateway listings, OpenAPI definitions);
// mimalloc returns that memory to the system where glibc's arenas keep it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi {
            command: OpenapiCommand::Convert { input, output },
        }) => {
            let code = openapi_convert::run_cli(
                &input,
                output.as_deref(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        None | Some(Command::Run) => run(cli.config.as_deref()),
    }
}

fn run(config_file: Option<&std::path::Path>) -> ExitCode {
    let config = match Config::load(config_file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("apim-operator: {e}");
            return ExitCode::from(2);
        }
    };
    apim_operator::telemetry::init(config.log_format, &config.log_level);
    // One TLS crypto provider for every client (kube, reqwest): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("apim-operator: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(apim_operator::app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator failed");
            eprintln!("apim-operator: {e}");
            ExitCode::FAILURE
        }
    }
}
