//! The lab itself: the API server answers, RBAC separates tenants, the controller-manager
//! collects garbage, and the broker round-trips a message.

use std::time::Duration;

use e2e::{LabUser, lab_or_skip, wait};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, PostParams};
use rdkafka::Message;
use rdkafka::producer::FutureRecord;

fn config_map(name: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.to_string());
    cm.data = Some([("k".to_string(), "v".to_string())].into());
    cm
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[tokio::test]
async fn api_server_answers_with_its_version() {
    let lab = lab_or_skip!();
    let info = lab.admin().apiserver_version().await.expect("version");
    assert_eq!(info.major, "1");
    if lab.has_real_users() {
        // The lab builds Kubernetes v1.37.x, matching k8s-openapi's v1_37 feature.
        assert!(
            info.git_version.starts_with("v1.37."),
            "lab runs {}",
            info.git_version
        );
    }
}

#[tokio::test]
async fn tenant_devops_may_write_only_in_their_own_namespace() {
    let lab = lab_or_skip!();
    let devops = lab.user(LabUser("finance-devops")).await;
    let name = unique("rbac-probe");

    let own: Api<ConfigMap> = Api::namespaced(devops.clone(), "tenant-finance");
    own.create(&PostParams::default(), &config_map(&name))
        .await
        .expect("finance-devops creates a ConfigMap in tenant-finance");
    own.delete(&name, &DeleteParams::default())
        .await
        .expect("and deletes it");

    let other: Api<ConfigMap> = Api::namespaced(devops, "tenant-retail");
    match other
        .create(&PostParams::default(), &config_map(&name))
        .await
    {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "expected Forbidden, got {status:?}")
        }
        other => panic!("finance-devops must be forbidden in tenant-retail, got {other:?}"),
    }

    let (_, yes, _) = lab.kubectl(
        LabUser("finance-devops"),
        &[
            "auth",
            "can-i",
            "create",
            "configmaps",
            "-n",
            "tenant-finance",
        ],
    );
    let (_, no, _) = lab.kubectl(
        LabUser("finance-devops"),
        &[
            "auth",
            "can-i",
            "create",
            "configmaps",
            "-n",
            "tenant-retail",
        ],
    );
    assert_eq!((yes.trim(), no.trim()), ("yes", "no"));
}

#[tokio::test]
async fn owned_objects_are_garbage_collected() {
    let lab = lab_or_skip!();
    let ns = e2e::TestNamespace::create(&lab, "gc", &[]).await;
    let cms: Api<ConfigMap> = Api::namespaced(lab.admin(), ns.name());
    let secrets: Api<Secret> = Api::namespaced(lab.admin(), ns.name());

    let owner = cms
        .create(&PostParams::default(), &config_map("owner"))
        .await
        .expect("owner");
    let mut secret = Secret::default();
    secret.metadata.name = Some("owned".into());
    secret.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: owner.metadata.uid.clone().expect("uid"),
        ..Default::default()
    }]);
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("owned secret");

    cms.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    wait::until(
        Duration::from_secs(90),
        "the owned Secret to be garbage-collected",
        || async {
            match secrets.get_opt("owned").await {
                Ok(None) => Some(()),
                _ => None,
            }
        },
    )
    .await;
}

#[tokio::test]
async fn broker_round_trips_a_message() {
    let lab = lab_or_skip!();
    let topic = unique("e2e-roundtrip");
    let key = uuid::Uuid::new_v4().to_string();
    let producer = e2e::kafka::producer(lab.brokers());
    producer
        .send(
            FutureRecord::to(&topic).key(&key).payload("hello from e2e"),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce (is the broker up? hack/up starts it)");

    let consumer = e2e::kafka::consumer(lab.brokers(), &[&topic]);
    let mut stream = consumer.stream();
    let message = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("a message within 60s")
        .expect("stream open")
        .expect("no consumer error");
    assert_eq!(message.key(), Some(key.as_bytes()));
    assert_eq!(message.payload(), Some(&b"hello from e2e"[..]));
}
