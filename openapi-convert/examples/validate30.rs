//! `validate30 FILE…`: validates JSON or YAML documents against the official OpenAPI 3.0
//! JSON Schema (draft-04), vendored in `tests/schemas/`. Prints `FILE: valid` or the first
//! errors; exits 1 if any document is invalid.

use std::process::ExitCode;

const SCHEMA: &str = include_str!("../tests/schemas/openapi-3.0.schema.json");

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: validate30 FILE...");
        return ExitCode::from(2);
    }
    let schema: serde_json::Value = match serde_json::from_str(SCHEMA) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("validate30: bad vendored schema: {e}");
            return ExitCode::from(2);
        }
    };
    let validator = match jsonschema::draft4::new(&schema) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("validate30: cannot compile the schema: {e}");
            return ExitCode::from(2);
        }
    };
    let mut all_valid = true;
    for file in &files {
        let doc = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| openapi_convert::parse(&text).map_err(|e| e.to_string()));
        match doc {
            Err(e) => {
                all_valid = false;
                println!("{file}: unreadable: {e}");
            }
            Ok((doc, _)) => {
                let errors: Vec<String> = validator
                    .iter_errors(&doc)
                    .take(5)
                    .map(|e| format!("  {}: {e}", e.instance_path()))
                    .collect();
                if errors.is_empty() {
                    println!("{file}: valid");
                } else {
                    all_valid = false;
                    println!("{file}: INVALID");
                    for e in errors {
                        let cut: String = e.chars().take(300).collect();
                        println!("{cut}");
                    }
                }
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
