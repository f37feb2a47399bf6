//! Runs `apim-webhook` as a child process on 127.0.0.1 with a self-generated CA, and
//! registers it with the API server by URL — scoped to the namespaces a test names, so
//! tests running beside it are not judged by it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};

use crate::operator::free_port;
use crate::{Lab, bin_path, wait, workspace_root};

/// A running webhook and its registration; both removed on drop.
pub struct WebhookProcess {
    child: Child,
    /// HTTPS port on 127.0.0.1.
    pub port: u16,
    /// Name of its Validating/MutatingWebhookConfiguration.
    pub registration: String,
    dir: PathBuf,
    config: kube::Config,
}

impl WebhookProcess {
    /// Starts the webhook with `config_yaml` and registers it for the namespaces `namespaces`
    /// (our namespaced kinds only: cluster-scoped kinds cannot be scoped by namespace).
    pub async fn start(
        lab: &Lab,
        name: &str,
        config_yaml: &str,
        namespaces: &[&str],
    ) -> WebhookProcess {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("apim-webhook-e2e-{name}-{port}"));
        std::fs::create_dir_all(&dir).expect("webhook dir");
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config_yaml).expect("webhook config");
        let log = std::fs::File::create(dir.join("webhook.log")).expect("webhook log");
        let child = Command::new(bin_path("apim-webhook"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert-dir")
            .arg(dir.join("certs"))
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting apim-webhook");
        let ca_path = dir.join("certs/ca.crt");
        wait::until(
            Duration::from_secs(30),
            "apim-webhook to write its CA and listen",
            || {
                let ca_path = ca_path.clone();
                async move {
                    let listening = tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok();
                    (listening && ca_path.exists()).then_some(())
                }
            },
        )
        .await;
        let ca = std::fs::read(&ca_path).expect("CA bundle");
        let registration = format!("apim-webhook-e2e-{name}-{port}");
        remove_stale_registrations(lab).await;
        register(lab, &registration, port, &ca, namespaces).await;
        WebhookProcess {
            child,
            port,
            registration,
            dir,
            config: lab.admin_config().clone(),
        }
    }

    /// The webhook's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.join("webhook.log")).unwrap_or_default()
    }
}

/// Label naming the test process that registered a webhook configuration.
const OWNER_PID_LABEL: &str = "apim.cab-i.com/e2e-owner-pid";

/// Deletes registrations left by test processes that died without cleaning up (their
/// webhook is gone, so the API server would refuse every request they match).
async fn remove_stale_registrations(lab: &Lab) {
    let alive = |pid: &str| std::path::Path::new("/proc").join(pid).exists();
    let lp = kube::api::ListParams::default().labels(OWNER_PID_LABEL);
    let dp = DeleteParams::default();
    let validating = Api::<ValidatingWebhookConfiguration>::all(lab.admin());
    for c in validating
        .list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let pid = c
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_PID_LABEL))
            .cloned()
            .unwrap_or_default();
        if !alive(&pid) {
            let _ = validating
                .delete(&c.metadata.name.unwrap_or_default(), &dp)
                .await;
        }
    }
    let mutating = Api::<MutatingWebhookConfiguration>::all(lab.admin());
    for c in mutating
        .list(&lp)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
    {
        let pid = c
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_PID_LABEL))
            .cloned()
            .unwrap_or_default();
        if !alive(&pid) {
            let _ = mutating
                .delete(&c.metadata.name.unwrap_or_default(), &dp)
                .await;
        }
    }
}

/// Renders deploy/webhook/url/*.yaml for this test: unique names, our port and CA, rules
/// for namespaced kinds only, scoped to `namespaces`.
async fn register(lab: &Lab, name: &str, port: u16, ca_pem: &[u8], namespaces: &[&str]) {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let render = |file: &str| -> serde_json::Value {
        let path = workspace_root().join("deploy/webhook/url").join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
            .replace("${CA_BUNDLE}", &ca)
            .replace(
                "https://127.0.0.1:8443/",
                &format!("https://127.0.0.1:{port}/"),
            );
        let mut doc: serde_json::Value =
            serde_yaml::from_str(&text).expect("webhook configuration YAML");
        doc["metadata"]["name"] = name.into();
        doc["metadata"]["labels"][OWNER_PID_LABEL] = std::process::id().to_string().into();
        let hooks = doc["webhooks"].as_array_mut().expect("webhooks");
        // Only the hooks for our kinds; workloads and namespaces have their own tests.
        hooks.retain(|h| h["rules"][0]["apiGroups"][0] == "apim.cab-i.com");
        for hook in hooks.iter_mut() {
            for rule in hook["rules"].as_array_mut().expect("rules") {
                if let Some(res) = rule["resources"].as_array_mut() {
                    res.retain(|r| r != "teardownpolicies");
                }
                rule["scope"] = "Namespaced".into();
            }
            hook["namespaceSelector"] = serde_json::json!({
                "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]
            });
        }
        doc
    };
    let validating: ValidatingWebhookConfiguration =
        serde_json::from_value(render("validating.yaml")).expect("ValidatingWebhookConfiguration");
    let mutating: MutatingWebhookConfiguration =
        serde_json::from_value(render("mutating.yaml")).expect("MutatingWebhookConfiguration");
    let pp = PatchParams::apply("apim-e2e").force();
    Api::<ValidatingWebhookConfiguration>::all(lab.admin())
        .patch(name, &pp, &Patch::Apply(&validating))
        .await
        .expect("registering the validating webhook");
    Api::<MutatingWebhookConfiguration>::all(lab.admin())
        .patch(name, &pp, &Patch::Apply(&mutating))
        .await
        .expect("registering the mutating webhook");
}

impl Drop for WebhookProcess {
    fn drop(&mut self) {
        let name = self.registration.clone();
        crate::lab::blocking_cleanup(self.config.clone(), |client| async move {
            let dp = DeleteParams::default();
            let _ = Api::<ValidatingWebhookConfiguration>::all(client.clone())
                .delete(&name, &dp)
                .await;
            let _ = Api::<MutatingWebhookConfiguration>::all(client)
                .delete(&name, &dp)
                .await;
        });
        // The API server learns of the deleted registration through its own watch: keep
        // serving a moment so requests in flight elsewhere are not refused.
        std::thread::sleep(Duration::from_secs(2));
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("apim-webhook log kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
