//! The fake's own control operations, in-process and under `/_fake/`: each changes what it
//! names, as the LXD API then shows.

mod common;

use common::unix_request;
use fake_lxd::{Config, FakeLxd};

async fn create(fake: &FakeLxd, name: &str) -> serde_json::Value {
    let body = format!(r#"{{"name": "{name}", "type": "client", "token": true}}"#);
    let reply = unix_request(fake.unix_socket(), "POST", "/1.0/certificates", Some(&body)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.json()
}

#[tokio::test]
async fn the_control_routes_consume_restart_and_configure() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let client = reqwest::Client::new();
    let control = fake.control_url();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client
            .request(method, format!("{control}/_fake/{path}"))
            .bearer_auth(fake.control_token())
            .json(&body)
            .send()
    };

    // Consume: a token joins a new client once, then is spent.
    create(&fake, "alice").await;
    let pending = fake.control().pending_tokens();
    assert_eq!(pending.len(), 1);
    let token = pending[0].1.clone();
    let consume = || async {
        call(
            reqwest::Method::POST,
            "consume",
            serde_json::json!({"token": token}),
        )
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()
    };
    let consumed = consume().await;
    assert_eq!(consumed["status"], 201, "{consumed}");
    assert!(consumed["error"].is_null());
    let fingerprint = consumed["fingerprint"].as_str().unwrap().to_owned();
    assert!(
        fake.control()
            .certificates()
            .iter()
            .any(|(name, fp)| name == "alice" && fp == &fingerprint),
        "{:?}",
        fake.control().certificates()
    );
    assert!(fake.control().pending_tokens().is_empty());
    let again = consume().await;
    assert_eq!(again["status"], 403, "{again}");
    assert!(again["error"].is_string());

    // Restart: pending tokens are lost, the trust store stays.
    create(&fake, "bob").await;
    assert_eq!(fake.control().pending_tokens().len(), 1);
    let r = call(reqwest::Method::POST, "restart", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(fake.control().pending_tokens().is_empty());
    assert_eq!(fake.control().certificates().len(), 1);

    // Config: a key the server takes shows in GET /1.0; one it refuses changes nothing.
    let r = call(
        reqwest::Method::PATCH,
        "config",
        serde_json::json!({"core.remote_token_expiry": "1H"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let root = unix_request(fake.unix_socket(), "GET", "/1.0", None).await;
    assert_eq!(
        root.json()["metadata"]["config"]["core.remote_token_expiry"],
        "1H"
    );
    let r = call(
        reqwest::Method::PATCH,
        "config",
        serde_json::json!({"core.remote_token_expiry": "banana"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!r.text().await.unwrap().is_empty());
    let root = unix_request(fake.unix_socket(), "GET", "/1.0", None).await;
    assert_eq!(
        root.json()["metadata"]["config"]["core.remote_token_expiry"],
        "1H"
    );
}

#[tokio::test]
async fn in_process_controls_revoke_hide_extensions_and_switch_profiles() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let op = create(&fake, "carol").await;
    let id = op["metadata"]["id"].as_str().unwrap().to_owned();
    assert_eq!(fake.control().pending_tokens()[0].0, id);
    fake.control().revoke(&id).unwrap();
    assert!(fake.control().pending_tokens().is_empty());
    assert!(
        fake.control().revoke(&id).is_err(),
        "a revoked token is gone"
    );

    let extensions = |root: serde_json::Value| -> Vec<String> {
        serde_json::from_value(root["metadata"]["api_extensions"].clone()).unwrap()
    };
    let root = unix_request(fake.unix_socket(), "GET", "/1.0", None).await;
    let shown = extensions(root.json());
    let hidden = shown.last().unwrap().clone();
    fake.control().hide_extension(&hidden);
    let root = unix_request(fake.unix_socket(), "GET", "/1.0", None).await;
    let now_shown = extensions(root.json());
    assert_eq!(now_shown.len(), shown.len() - 1);
    assert!(!now_shown.contains(&hidden));

    create(&fake, "dave").await;
    fake.control()
        .set_profile(fake_lxd::state::Profile::Incus6_0);
    assert_eq!(fake.control().profile(), fake_lxd::state::Profile::Incus6_0);
    assert!(
        fake.control().pending_tokens().is_empty(),
        "a profile switch is a restart"
    );
}
