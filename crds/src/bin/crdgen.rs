//! Writes the CRD manifests to `crds/yaml/<plural>.yaml`.
//!
//! `cargo run -p crds --bin crdgen` writes the files; `--stdout` prints every CRD as one
//! multi-document YAML stream instead.

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let crds = crds::all_crds();
    if std::env::args().skip(1).any(|a| a == "--stdout") {
        for crd in &crds {
            print!("---\n{}", crds::render_yaml(crd));
        }
        return ExitCode::SUCCESS;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("failed to create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for crd in &crds {
        let path = dir.join(crds::yaml_file_name(crd));
        if let Err(e) = std::fs::write(&path, crds::render_yaml(crd)) {
            eprintln!("failed to write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}
