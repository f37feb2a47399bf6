//! Installs the committed CRD manifests (crds/yaml/) and waits until they are served.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::sync::OnceCell;

use crate::{Lab, wait, workspace_root};

static INSTALLED: OnceCell<()> = OnceCell::const_new();

/// Applies every `crds/yaml/*.yaml` by server-side apply (once per test binary) and waits
/// for each to be `Established`.
pub async fn install(lab: &Lab) {
    INSTALLED
        .get_or_init(|| async {
            let api: Api<CustomResourceDefinition> = Api::all(lab.admin());
            let dir = workspace_root().join("crds/yaml");
            let mut names = Vec::new();
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            entries.sort();
            for path in entries {
                let text = std::fs::read_to_string(&path).expect("CRD file");
                let crd: CustomResourceDefinition = serde_yaml::from_str(&text)
                    .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", path.display()));
                let name = crd.metadata.name.clone().expect("CRD name");
                api.patch(
                    &name,
                    &PatchParams::apply("apim-e2e").force(),
                    &Patch::Apply(&crd),
                )
                .await
                .unwrap_or_else(|e| panic!("applying {}: {e}", path.display()));
                names.push(name);
            }
            for name in names {
                let api = api.clone();
                wait::until(
                    Duration::from_secs(30),
                    &format!("CRD {name} to be established"),
                    || {
                        let api = api.clone();
                        let name = name.clone();
                        async move {
                            let crd = api.get(&name).await.ok()?;
                            let established = crd
                                .status?
                                .conditions?
                                .iter()
                                .any(|c| c.type_ == "Established" && c.status == "True");
                            established.then_some(())
                        }
                    },
                )
                .await;
            }
        })
        .await;
}
