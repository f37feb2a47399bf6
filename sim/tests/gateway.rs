//! The gateway side, through real HTTP, status codes and bodies per the contract.

mod common;

use std::collections::BTreeSet;

use apim_sim::SimConfig;
use common::{Gw, openapi30, start};
use serde_json::{Value, json};

fn create_body(name: &str, version: &str) -> Value {
    json!({"apiName": name, "apiVersion": version, "type": "openapi", "apiDescription": "d", "apiDefinition": openapi30(name)})
}

#[tokio::test]
async fn auth_is_required_and_errors_are_error_details() {
    let sim = start(SimConfig::default()).await;
    let http = common::client();
    let url = format!("{}/rest/apigateway/apis", sim.gateway_url("dev"));
    let r = http.get(&url).send().await.expect("answer");
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().await.expect("json");
    assert!(body["errorDetails"].is_string(), "{body}");
    let r = http
        .get(&url)
        .basic_auth("Administrator", Some("wrong"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .get(&url)
        .basic_auth("Administrator", Some("manage"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 200);
    // Unknown environment.
    let r = http
        .get(format!("{}/rest/apigateway/apis", sim.gateway_url("qa")))
        .basic_auth("Administrator", Some("manage"))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn bearer_token_when_configured() {
    let sim = start(SimConfig {
        gateway_token: Some("gw-token".into()),
        ..SimConfig::default()
    })
    .await;
    let http = common::client();
    let url = format!("{}/rest/apigateway/apis", sim.gateway_url("dev"));
    let ok = http
        .get(&url)
        .bearer_auth("gw-token")
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status().as_u16(), 200);
    let bad = http
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("answer");
    assert_eq!(bad.status().as_u16(), 401);
}

#[tokio::test]
async fn api_lifecycle() {
    let sim = start(SimConfig::default()).await;
    let gw = Gw::new(&sim, "dev");

    let (s, created) = gw.post("/apis", create_body("orders", "1.0")).await;
    assert_eq!(s, 200, "{created}");
    let api = &created["apiResponse"]["api"];
    let id = api["id"].as_str().expect("id").to_owned();
    assert_eq!(api["isActive"], json!(false));
    assert_eq!(api["type"], json!("REST"));
    assert_eq!(created["apiResponse"]["responseStatus"], json!("SUCCESS"));
    assert_eq!(created["apiResponse"]["versions"][0]["apiId"], json!(id));
    assert!(
        api["creationDate"]
            .as_str()
            .is_some_and(|d| d.ends_with(" GMT"))
    );

    // Duplicate name + version (assumed: 400).
    let (s, dup) = gw.post("/apis", create_body("orders", "1.0")).await;
    assert_eq!(s, 400);
    assert!(dup["errorDetails"].is_string());

    // Missing type, missing definition, not an OpenAPI document.
    let (s, _) = gw
        .post(
            "/apis",
            json!({"apiName": "x", "apiDefinition": openapi30("x")}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw
        .post("/apis", json!({"apiName": "x", "type": "openapi"}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw
        .post(
            "/apis",
            json!({"apiName": "x", "type": "openapi", "apiDefinition": {"foo": 1}}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw
        .post(
            "/apis",
            json!({"apiName": "x", "type": "openapi", "apiDefinition": "not json: ["}),
        )
        .await;
    assert_eq!(s, 400);

    // A YAML string definition is accepted.
    let (s, yaml) = gw
        .post(
            "/apis",
            json!({"apiName": "y", "apiVersion": "2", "type": "swagger",
                   "apiDefinition": "swagger: '2.0'\ninfo:\n  title: y\n  version: '2'\npaths: {}\n"}),
        )
        .await;
    assert_eq!(s, 200, "{yaml}");

    // Read, raw definition, 404.
    let (s, got) = gw.get(&format!("/apis/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(got["apiResponse"]["api"]["apiName"], json!("orders"));
    let (s, raw) = gw.get(&format!("/apis/{id}?format=openapi")).await;
    assert_eq!(s, 200);
    assert_eq!(raw["openapi"], json!("3.0.3"));
    let (s, nf) = gw.get("/apis/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(s, 404);
    assert!(nf["errorDetails"].is_string());

    // List, paged, filtered.
    let (s, list) = gw.get("/apis").await;
    assert_eq!(s, 200);
    assert_eq!(list["apiResponse"].as_array().map(Vec::len), Some(2));
    assert_eq!(list["apiResponse"][0]["api"]["isActive"], json!(false));
    let (_, page) = gw.get("/apis?from=1&size=1").await;
    assert_eq!(page["apiResponse"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["apiResponse"][0]["api"]["apiName"], json!("y"));
    let (_, by_id) = gw.get(&format!("/apis?apiIds={id}")).await;
    assert_eq!(by_id["apiResponse"].as_array().map(Vec::len), Some(1));

    // Update.
    let mut new_def = openapi30("orders");
    new_def["info"]["description"] = json!("changed");
    let (s, upd) = gw
        .put(
            &format!("/apis/{id}"),
            Some(json!({"apiName": "orders", "apiVersion": "1.0", "type": "openapi", "apiDescription": "d2", "apiDefinition": new_def})),
        )
        .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["apiResponse"]["api"]["apiDescription"], json!("d2"));
    assert_eq!(
        upd["apiResponse"]["api"]["apiDefinition"]["info"]["description"],
        json!("changed")
    );
    let (s, _) = gw
        .put("/apis/unknown", Some(create_body("orders", "1.0")))
        .await;
    assert_eq!(s, 404);

    // Activate / deactivate, 400 when already in that state.
    let (s, act) = gw.put(&format!("/apis/{id}/activate"), None).await;
    assert_eq!(s, 200);
    assert_eq!(act["apiResponse"]["api"]["isActive"], json!(true));
    let (s, again) = gw.put(&format!("/apis/{id}/activate"), None).await;
    assert_eq!(s, 400);
    assert!(again["errorDetails"].is_string());

    // Delete while active: 400.
    let (s, _) = gw.delete(&format!("/apis/{id}")).await;
    assert_eq!(s, 400);
    let (s, _) = gw.put(&format!("/apis/{id}/deactivate"), None).await;
    assert_eq!(s, 200);
    let (s, _) = gw.put(&format!("/apis/{id}/deactivate"), None).await;
    assert_eq!(s, 400);

    // Referenced by an application: forceDelete needed.
    let (s, app) = gw.post("/applications", json!({"name": "shop"})).await;
    assert_eq!(s, 200);
    let app_id = app["id"].as_str().expect("app id").to_owned();
    let (s, _) = gw
        .post(
            &format!("/applications/{app_id}/apis"),
            json!({"apiIDs": [id]}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, users) = gw.get(&format!("/apis/{id}/applications")).await;
    assert_eq!(s, 200);
    assert_eq!(users["applications"][0]["id"], json!(app_id));
    let (s, _) = gw.delete(&format!("/apis/{id}")).await;
    assert_eq!(s, 400);
    let (s, _) = gw.delete(&format!("/apis/{id}?forceDelete=true")).await;
    assert_eq!(s, 204);
    let (s, _) = gw.get(&format!("/apis/{id}")).await;
    assert_eq!(s, 404);
    let (_, assoc) = gw.get(&format!("/applications/{app_id}/apis")).await;
    assert_eq!(assoc["apiIDs"], json!([]));
    let (s, _) = gw.delete(&format!("/apis/{id}")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn openapi_31_refused_unless_configured() {
    let sim = start(SimConfig {
        gateway_31: BTreeSet::from(["sandbox".to_owned()]),
        ..SimConfig::default()
    })
    .await;
    let mut def = openapi30("v31");
    def["openapi"] = json!("3.1.0");
    let body =
        json!({"apiName": "v31", "apiVersion": "1", "type": "openapi", "apiDefinition": def});
    let (s, e) = Gw::new(&sim, "dev").post("/apis", body.clone()).await;
    assert_eq!(s, 400);
    assert!(
        e["errorDetails"]
            .as_str()
            .is_some_and(|m| m.contains("3.1")),
        "{e}"
    );
    let (s, _) = Gw::new(&sim, "sandbox").post("/apis", body).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn environments_are_isolated() {
    let sim = start(SimConfig::default()).await;
    let (s, _) = Gw::new(&sim, "dev")
        .post("/apis", create_body("a", "1"))
        .await;
    assert_eq!(s, 200);
    let (_, prod) = Gw::new(&sim, "prod").get("/apis").await;
    assert_eq!(prod["apiResponse"], json!([]));
    let (s, _) = Gw::new(&sim, "prod")
        .post("/apis", create_body("a", "1"))
        .await;
    assert_eq!(s, 200, "same name+version in another environment is fine");
}

#[tokio::test]
async fn multipart_create() {
    let sim = start(SimConfig::default()).await;
    let gw = Gw::new(&sim, "dev");
    let boundary = "XsimBoundaryX";
    let doc = "openapi: 3.0.1\ninfo:\n  title: mp\n  version: '1'\npaths: {}\n";
    let mut body = String::new();
    for (name, value) in [
        ("apiName", "mp"),
        ("apiVersion", "1"),
        ("type", "openapi"),
        ("file", doc),
    ] {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{}\r\n\r\n{value}\r\n",
            if name == "file" {
                "; filename=\"api.yaml\""
            } else {
                ""
            }
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let r = gw
        .http
        .post(format!("{}/apis", gw.base))
        .basic_auth(common::USER, Some(common::PASSWORD))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["apiResponse"]["api"]["apiName"], json!("mp"));
    assert_eq!(
        v["apiResponse"]["api"]["apiDefinition"]["openapi"],
        json!("3.0.1")
    );
}

#[tokio::test]
async fn applications_tokens_and_associations() {
    let sim = start(SimConfig::default()).await;
    let gw = Gw::new(&sim, "staging");
    let (_, a1) = gw.post("/apis", create_body("a1", "1")).await;
    let (_, a2) = gw.post("/apis", create_body("a2", "1")).await;
    let api1 = a1["apiResponse"]["api"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let api2 = a2["apiResponse"]["api"]["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let (s, _) = gw
        .post("/applications", json!({"description": "no name"}))
        .await;
    assert_eq!(s, 400);
    let (s, app) = gw
        .post(
            "/applications",
            json!({"name": "shop", "description": "d", "contactEmails": ["a@b.c"]}),
        )
        .await;
    assert_eq!(s, 200);
    let id = app["id"].as_str().expect("id").to_owned();
    let key1 = app["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"]
        .as_str()
        .expect("a generated key")
        .to_owned();
    assert_eq!(app["version"], json!("1.0"));

    let (s, one) = gw.get(&format!("/applications/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["applications"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["applications"][0]["contactEmails"], json!(["a@b.c"]));
    let (s, nf) = gw.get("/applications/nope").await;
    assert_eq!(s, 404);
    assert!(nf["errorDetails"].is_string());
    let (_, all) = gw.get("/applications").await;
    assert_eq!(all["applications"].as_array().map(Vec::len), Some(1));

    let (s, upd) = gw
        .put(
            &format!("/applications/{id}"),
            Some(json!({"name": "shop", "description": "d2"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(upd["description"], json!("d2"));

    // Token regeneration: new key; unknown app → 400.
    let (s, regen) = gw
        .post(
            &format!("/applications/{id}/accessTokens"),
            json!({"type": "apiAccessKeyCredentials"}),
        )
        .await;
    assert_eq!(s, 200);
    let key2 = regen["accessTokens"]["apiAccessKey_credentials"]["apiAccessKey"]
        .as_str()
        .expect("key");
    assert_ne!(key1, key2);
    let (s, _) = gw
        .post(
            "/applications/nope/accessTokens",
            json!({"type": "apiAccessKeyCredentials"}),
        )
        .await;
    assert_eq!(s, 400);

    // Associations replace the list.
    let path = format!("/applications/{id}/apis");
    let (s, r) = gw.post(&path, json!({"apiIDs": [api1]})).await;
    assert_eq!(s, 200);
    assert_eq!(r["apiIDs"], json!([api1]));
    let (s, _) = gw.put(&path, Some(json!({"apiIDs": [api2]}))).await;
    assert_eq!(s, 200);
    let (_, r) = gw.get(&path).await;
    assert_eq!(r["apiIDs"], json!([api2]), "PUT replaces, it does not add");
    let (_, r) = gw.get(&format!("/applications/{id}")).await;
    assert_eq!(r["applications"][0]["consumingAPIs"], json!([api2]));
    let (s, _) = gw.put(&path, Some(json!({"apiIDs": []}))).await;
    assert_eq!(s, 200);
    let (_, r) = gw.get(&path).await;
    assert_eq!(r["apiIDs"], json!([]));
    let (s, _) = gw
        .post("/applications/nope/apis", json!({"apiIDs": []}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw.get("/applications/nope/apis").await;
    assert_eq!(s, 400);
    let (s, _) = gw.post(&path, json!({"apiIDs": ["no-such-api"]})).await;
    assert_eq!(s, 400);

    // Suspend, delete.
    let (s, p) = gw
        .call(
            reqwest::Method::PATCH,
            &format!("/applications/{id}"),
            Some(json!({"isSuspended": true})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(p["isSuspended"], json!(true));
    let (s, _) = gw.delete(&format!("/applications/{id}")).await;
    assert_eq!(s, 204);
    let (s, _) = gw.delete(&format!("/applications/{id}")).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn aliases() {
    let sim = start(SimConfig::default()).await;
    let gw = Gw::new(&sim, "dev");
    let body =
        json!({"name": "backend", "type": "endpoint", "stage": "dev", "endPointURI": "http://b:1"});
    let (s, created) = gw.post("/alias", body.clone()).await;
    assert_eq!(s, 201, "{created}");
    let id = created["alias"]["id"].as_str().expect("id").to_owned();
    assert_eq!(created["alias"]["endPointURI"], json!("http://b:1"));

    let (s, dup) = gw.post("/alias", body.clone()).await;
    assert_eq!(s, 400);
    assert!(dup["errorDetails"].is_string());
    let mut other_stage = body.clone();
    other_stage["stage"] = json!("staging");
    let (s, _) = gw.post("/alias", other_stage).await;
    assert_eq!(s, 201, "one record per stage");
    let (s, _) = gw
        .post("/alias", json!({"type": "simple", "value": "x"}))
        .await;
    assert_eq!(s, 400, "no name");

    let (s, got) = gw.get(&format!("/alias/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(got["alias"]["name"], json!("backend"));
    let (_, list) = gw.get("/alias").await;
    assert_eq!(list["alias"].as_array().map(Vec::len), Some(2));

    let mut changed = got["alias"].clone();
    changed["endPointURI"] = json!("http://b:2");
    let (s, upd) = gw.put(&format!("/alias/{id}"), Some(changed)).await;
    assert_eq!(s, 200);
    assert_eq!(upd["alias"]["endPointURI"], json!("http://b:2"));

    let (s, nf) = gw.get("/alias/missing").await;
    assert_eq!(s, 404);
    assert_eq!(
        nf,
        json!({"errorDetails": " Alias with id: missing does not exist."})
    );
    let (s, nf) = gw.put("/alias/missing", Some(body.clone())).await;
    assert_eq!(s, 404);
    assert_eq!(
        nf,
        json!({"errorDetails": " Alias with id: missing does not exist."})
    );

    let (s, wrong) = gw.post(&format!("/alias/{id}"), json!({})).await;
    assert_eq!(s, 405);
    assert!(wrong["errorDetails"].is_string());

    let (s, _) = gw.delete(&format!("/alias/{id}")).await;
    assert_eq!(s, 204);
    let (s, _) = gw.delete(&format!("/alias/{id}")).await;
    assert_eq!(s, 404);
}
