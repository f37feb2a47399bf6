//! `openapi-convert IN [-o OUT]`: converts an OpenAPI 3.1 document to 3.0.3.

use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: openapi-convert IN [-o OUT]\n\
    Converts an OpenAPI 3.1 document (JSON or YAML) to OpenAPI 3.0.3, in the same format.\n\
    The document goes to OUT (or stdout), the report of changes to stderr.";

fn main() -> ExitCode {
    let mut input: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("-o" | "--output") => match args.next() {
                Some(path) => output = Some(path.into()),
                None => return usage(),
            },
            _ if input.is_none() => input = Some(arg.into()),
            _ => return usage(),
        }
    }
    let Some(input) = input else { return usage() };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = openapi_convert::run_cli(
        &input,
        output.as_deref(),
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
