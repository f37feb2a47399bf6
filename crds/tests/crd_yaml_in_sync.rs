//! The committed manifests in `crds/yaml/` are exactly what the code generates.

use std::path::PathBuf;

const FIX: &str = "run `cargo run -p crds --bin crdgen` and commit crds/yaml/";

#[test]
fn committed_yaml_matches_the_code() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("yaml");
    let mut expected_files = Vec::new();
    for crd in crds::all_crds() {
        let name = crds::yaml_file_name(&crd);
        let path = dir.join(&name);
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; {FIX}", path.display()));
        let generated = crds::render_yaml(&crd);
        if committed != generated {
            let line = committed
                .lines()
                .zip(generated.lines())
                .position(|(a, b)| a != b)
                .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
            panic!(
                "{} differs from the generated CRD of {} (first difference at {line}); {FIX}",
                path.display(),
                crd.spec.names.kind
            );
        }
        expected_files.push(name);
    }
    // No stale manifest of a removed or renamed kind.
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}; {FIX}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "unexpected files in crds/yaml/; {FIX}"
    );
}

#[test]
fn rendered_yaml_parses_back_to_the_same_crd() {
    for crd in crds::all_crds() {
        let yaml = crds::render_yaml(&crd);
        assert!(yaml.starts_with(crds::YAML_HEADER));
        let back: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
            serde_yaml::from_str(&yaml).expect("parses");
        assert_eq!(back, crd);
    }
}
