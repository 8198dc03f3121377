//! The fake's own control operations, in-process and under `/_fake/`: each changes what it
//! names, as the LXD API then shows.

mod common;

use common::unix_request;
use fake_kit::Api as _;
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

/// The pending tokens' operation ids.
fn pending_ids(fake: &FakeLxd) -> Vec<String> {
    fake.control()
        .pending_tokens()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn reset_seed_and_clock_act_on_the_lxd_state() {
    // A reset forgets the tokens and the trust store.
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    create(&fake, "erin").await;
    let token = fake.control().pending_tokens()[0].1.clone();
    assert_eq!(fake.control().consume(&token, None).0, 201);
    create(&fake, "frank").await;
    assert_eq!(fake.control().certificates().len(), 1);
    assert_eq!(fake.control().pending_tokens().len(), 1);
    fake.control().reset();
    assert!(fake.control().certificates().is_empty());
    assert!(fake.control().pending_tokens().is_empty());

    // The same seed makes the same operation ids and secrets.
    let other = FakeLxd::start(Config::for_testing()).await.unwrap();
    for fake in [&fake, &other] {
        fake.control().seed(7);
        create(fake, "grace").await;
    }
    assert_eq!(pending_ids(&fake), pending_ids(&other));
    let secret = |fake: &FakeLxd| {
        fake_lxd::state::decode_token(&fake.control().pending_tokens()[0].1)
            .unwrap()
            .secret
    };
    assert_eq!(secret(&fake), secret(&other));
    other.control().seed(8);
    create(&other, "grace").await;
    assert!(!pending_ids(&fake).contains(&pending_ids(&other)[1]));

    // The clock's advance expires a token with an expiry.
    fake.control()
        .set_config("core.remote_token_expiry", "1H")
        .unwrap();
    create(&fake, "heidi").await;
    assert_eq!(fake.control().pending_tokens().len(), 2);
    fake.control()
        .advance(std::time::Duration::from_secs(2 * 3600));
    assert_eq!(
        fake.control().pending_tokens().len(),
        1,
        "the token with an expiry is gone, the other stays"
    );
}

/// Each profile's joining request field carries the token: `password` for LXD 5.0,
/// `trust_token` for LXD 6 and Incus.
#[tokio::test]
async fn the_control_consumes_in_every_profile() {
    for profile in [
        fake_lxd::Profile::V5_0,
        fake_lxd::Profile::V6,
        fake_lxd::Profile::Incus6_0,
    ] {
        let fake = FakeLxd::start(Config {
            profile,
            ..Config::for_testing()
        })
        .await
        .unwrap();
        create(&fake, "ivan").await;
        let token = fake.control().pending_tokens()[0].1.clone();
        let (status, error, cert) = fake.control().consume(&token, None);
        assert_eq!(status, 201, "{profile:?}: {error:?}");
        assert_eq!(
            fake.control().certificates(),
            [("ivan".to_owned(), cert.fingerprint.clone())]
        );
    }
}

/// An injected status fault answers in LXD's error envelope, with the text given or a default.
#[tokio::test]
async fn faults_answer_in_lxds_error_envelope() {
    use fake_lxd::faults::{Action, Rule};
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    for (body, text) in [
        (
            Some(serde_json::json!("down for maintenance")),
            "down for maintenance",
        ),
        (None, "Injected fault"),
    ] {
        fake.control().add_fault(Rule {
            method: "GET".into(),
            path: "/1.0".into(),
            times: Some(1),
            action: Action::Status {
                status: 503,
                body,
                headers: None,
            },
        });
        let reply = unix_request(fake.unix_socket(), "GET", "/1.0", None).await;
        assert_eq!(reply.status, 503);
        assert_eq!(
            reply.json(),
            serde_json::json!({"type": "error", "status": "", "status_code": 0, "operation": "", "error_code": 503, "error": text, "metadata": null})
        );
    }
    let reply = unix_request(fake.unix_socket(), "GET", "/1.0", None).await;
    assert_eq!(reply.status, 200, "each fault applied once");
}

/// The certificate the fake reports is the one `GET /1.0` shows.
#[tokio::test]
async fn the_server_certificate_is_the_one_get_shows() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let root = unix_request(fake.unix_socket(), "GET", "/1.0", None)
        .await
        .json();
    let shown = root["metadata"]["environment"]["certificate"]
        .as_str()
        .unwrap();
    assert!(shown.starts_with("-----BEGIN CERTIFICATE-----"), "{shown}");
    assert_eq!(fake.server_cert_pem(), shown);
    assert_eq!(
        root["metadata"]["environment"]["certificate_fingerprint"],
        fake.server_fingerprint()
    );
}

/// Operation events reach a `/1.0/events` listener: a token's creation is one.
#[tokio::test]
async fn a_listener_hears_a_token_made() {
    use futures::StreamExt as _;
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let stream = tokio::net::UnixStream::connect(fake.unix_socket())
        .await
        .unwrap();
    let (mut socket, _) =
        tokio_tungstenite::client_async("ws://lxd/1.0/events?type=operation", stream)
            .await
            .unwrap();
    let op = create(&fake, "judy").await;
    let id = op["metadata"]["id"].as_str().unwrap();
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
        .await
        .expect("an event within 20 s")
        .unwrap()
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
    assert_eq!(event["type"], "operation");
    assert_eq!(event["metadata"]["id"], id);
    assert_eq!(event["metadata"]["class"], "token");
}

/// `shutdown` waits for the requests in flight: one slowed by a delay still gets its answer
/// before `shutdown` returns.
#[tokio::test]
async fn shutdown_lets_the_requests_in_flight_finish() {
    use fake_lxd::faults::{Action, Rule};
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    fake.control().add_fault(Rule {
        method: "GET".into(),
        path: "/1.0".into(),
        times: Some(1),
        action: Action::Delay { delay_ms: 300 },
    });
    let socket = fake.unix_socket().to_owned();
    let request = tokio::spawn(async move { unix_request(&socket, "GET", "/1.0", None).await });
    let control = fake.control();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while control.app.kit().in_flight() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never arrived"
        );
        tokio::task::yield_now().await;
    }
    fake.shutdown().await;
    // The fake logs a request when it has answered it.
    assert_eq!(
        control
            .requests()
            .iter()
            .map(|r| (r.path.as_str(), r.status))
            .collect::<Vec<_>>(),
        [("/1.0", Some(200))],
        "shutdown returned before the request was answered"
    );
    assert_eq!(request.await.unwrap().status, 200);
}

/// A wait with a timeout waits on the fake's clock: a token revoked while the wait runs is
/// answered as cancelled, not as the running operation it was when the wait began.
#[tokio::test]
async fn a_wait_with_a_timeout_sees_the_revoke_that_ends_it() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let op = create(&fake, "kim").await;
    let id = op["metadata"]["id"].as_str().unwrap().to_owned();
    let socket = fake.unix_socket().to_owned();
    let path = format!("/1.0/operations/{id}/wait?timeout=30");
    let wait = tokio::spawn(async move { unix_request(&socket, "GET", &path, None).await });
    let control = fake.control();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while control.app.kit().in_flight() == 0 && !wait.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "the wait never arrived"
        );
        tokio::task::yield_now().await;
    }
    control.revoke(&id).unwrap();
    let reply = wait.await.unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["metadata"]["status"], "Cancelled");
}
