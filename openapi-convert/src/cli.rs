//! `openapi-convert IN [-o OUT]`: the command-line face of the converter.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::{Format, convert, parse};

/// Reads `input` (JSON or YAML), converts it, and writes the result in the input's format
/// to `output` (or `out`); the report goes to `err`. Returns the exit code: 0 when the
/// document was converted or passed through, 1 when it was refused or could not be
/// read or written.
pub fn run_cli(
    input: &Path,
    output: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    match run(input, output, out, err) {
        Ok(()) => 0,
        Err(message) => {
            // Nothing more can be done if stderr itself is gone.
            let _ = writeln!(err, "openapi-convert: {message}");
            let _ = err.flush();
            1
        }
    }
}

fn run(
    input: &Path,
    output: Option<&Path>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), String> {
    let text = std::fs::read_to_string(input)
        .map_err(|e| format!("failed to read {}: {e}", input.display()))?;
    let (doc, format) = parse(&text).map_err(|e| format!("{}: {e}", input.display()))?;
    let conversion = convert(doc).map_err(|e| format!("{}: refused: {e}", input.display()))?;

    // Pretty JSON is about 2.5 times the size of compact input: allocate once.
    let mut rendered: Vec<u8> = Vec::with_capacity(text.len().saturating_mul(3));
    match format {
        // Untouched documents are written back byte for byte.
        _ if conversion.passed_through() => rendered.extend_from_slice(text.as_bytes()),
        Format::Json => {
            serde_json::to_writer_pretty(&mut rendered, &conversion.document)
                .map_err(|e| format!("failed to write JSON: {e}"))?;
            rendered.push(b'\n');
        }
        Format::Yaml => serde_yaml::to_writer(&mut rendered, &conversion.document)
            .map_err(|e| format!("failed to write YAML: {e}"))?,
    }
    match output {
        Some(path) => std::fs::write(path, &rendered)
            .map_err(|e| format!("failed to write {}: {e}", path.display()))?,
        None => {
            out.write_all(&rendered)
                .and_then(|()| out.flush())
                .map_err(|e| format!("failed to write the output: {e}"))?;
        }
    }
    drop(rendered);
    drop(text);

    let mut report = BufWriter::new(err);
    let written = write!(report, "{}: {conversion}", input.display()).and_then(|()| report.flush());
    // Freeing a large document takes a while; let a short-lived thread do it so that a
    // command-line caller can exit at once (if no thread can be had, it is freed here).
    let _ = std::thread::Builder::new().spawn(move || drop(conversion));
    written.map_err(|e| format!("failed to write the report: {e}"))
}
