//! A fresh namespace per test, deleted when the test ends (pass or fail).

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use crate::Lab;

/// A namespace made for one test; deleted on drop.
pub struct TestNamespace {
    name: String,
    config: kube::Config,
}

impl TestNamespace {
    /// Creates `e2e-<prefix>-<random>` with the given labels.
    pub async fn create(lab: &Lab, prefix: &str, labels: &[(&str, &str)]) -> TestNamespace {
        let name = format!(
            "e2e-{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        Api::<Namespace>::all(lab.admin())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        TestNamespace {
            name,
            config: lab.admin_config().clone(),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        crate::lab::blocking_cleanup(self.config.clone(), |client| async move {
            let _ = Api::<Namespace>::all(client)
                .delete(&name, &DeleteParams::background())
                .await;
        });
    }
}
