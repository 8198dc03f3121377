//! The kit under a toy fake: one counter behind `POST /count`, and `POST /hold` that waits
//! until the test releases it. Faults, the request log, the in-flight count, graceful
//! shutdown and the control API's token, driven by events (no sleeps).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fake_kit::faults::{Action, ResetWhen, Rule};
use fake_kit::{
    Api, Bind, ClockMode, Control, ControlListener, Controlled, Kit, OnHangup, Service, TEST_EPOCH,
    Tasks,
};
use time::OffsetDateTime;
use tokio::net::TcpListener;

struct Toy {
    kit: Kit,
    count: AtomicU64,
    ticks: AtomicU64,
    release: tokio::sync::Notify,
}

impl Toy {
    /// A toy at zero on a manual clock at the test epoch.
    fn new() -> Arc<Toy> {
        Arc::new(Toy {
            kit: Kit::new(ClockMode::Manual(TEST_EPOCH)),
            count: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            release: tokio::sync::Notify::new(),
        })
    }
}

impl Api for Toy {
    fn kit(&self) -> &Kit {
        &self.kit
    }

    fn fault_response(&self, status: u16, body: Option<serde_json::Value>) -> Response {
        let status = axum::http::StatusCode::from_u16(status).unwrap();
        (status, format!("toy fault {}", body.unwrap_or_default())).into_response()
    }
}

impl Controlled for Toy {
    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "now": self.kit.now().unix_timestamp(),
            "count": self.count.load(Ordering::SeqCst),
        })
    }

    fn reset_state(&self) {
        self.count.store(0, Ordering::SeqCst);
    }

    fn reseed(&self, seed: u64) {
        self.count.store(seed, Ordering::SeqCst);
    }

    fn tick(&self, _now: OffsetDateTime) {
        self.ticks.fetch_add(1, Ordering::SeqCst);
    }
}

async fn count(State(toy): State<Arc<Toy>>) -> String {
    (toy.count.fetch_add(1, Ordering::SeqCst) + 1).to_string()
}

async fn hold(State(toy): State<Arc<Toy>>) -> &'static str {
    toy.release.notified().await;
    toy.count.fetch_add(1, Ordering::SeqCst);
    "released"
}

struct Running {
    toy: Arc<Toy>,
    api: String,
    control: String,
    token: String,
    tasks: Tasks,
}

async fn start(on_hangup: OnHangup) -> Running {
    let toy = Toy::new();
    let router = Router::new()
        .route("/count", post(count))
        .route("/hold", post(hold))
        .with_state(toy.clone());
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let control = ControlListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), Bind::LoopbackOnly)
        .await
        .unwrap();
    let (control_url, token) = (control.url().to_owned(), control.token().to_owned());
    let mut tasks = Tasks::default();
    let service = Service::new(toy.clone(), router, Some("tcp"), on_hangup);
    tasks.spawn(fake_kit::serve::accept_tcp(listener, None, service, |_| ()));
    tasks.spawn(control.serve(fake_kit::control::routes(toy.clone(), Router::new())));
    Running {
        toy,
        api,
        control: control_url,
        token,
        tasks,
    }
}

fn fault(method: &str, path: &str, times: Option<u32>, action: Action) -> Rule {
    Rule {
        method: method.into(),
        path: path.into(),
        times,
        action,
    }
}

#[tokio::test]
async fn faults_answer_drop_or_act_and_the_log_records_them() {
    let fake = start(OnHangup::Cancel).await;
    let control = Control::new(fake.toy.clone());
    let client = reqwest::Client::new();
    let url = format!("{}/count", fake.api);
    control.add_fault(fault(
        "POST",
        "/count",
        Some(1),
        serde_json::from_str(r#"{"status":429,"body":"slow down","headers":{"retry-after":"3"}}"#)
            .unwrap(),
    ));
    control.add_fault(fault(
        "*",
        "/**",
        Some(1),
        Action::Reset {
            reset: ResetWhen::Before,
        },
    ));
    control.add_fault(fault(
        "post",
        "/*",
        Some(1),
        Action::Reset {
            reset: ResetWhen::After,
        },
    ));
    let throttled = client.post(&url).send().await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "3");
    assert_eq!(throttled.text().await.unwrap(), "toy fault \"slow down\"");
    assert!(client.post(&url).send().await.is_err(), "dropped before");
    assert_eq!(fake.toy.count.load(Ordering::SeqCst), 0);
    assert!(client.post(&url).send().await.is_err(), "dropped after");
    assert_eq!(
        fake.toy.count.load(Ordering::SeqCst),
        1,
        "acted, then dropped"
    );
    let ok = client.post(&url).send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "2");
    let log: Vec<_> = control
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone(), r.transport, r.status))
        .collect();
    let post = |status| ("POST".to_owned(), "/count".to_owned(), Some("tcp"), status);
    assert_eq!(
        log,
        [post(Some(429)), post(None), post(None), post(Some(200))]
    );
    control.reset();
    assert!(control.requests().is_empty());
    assert_eq!(control.state()["count"], 0);
}

#[tokio::test]
async fn a_held_request_is_in_flight_until_done_and_shutdown_waits_for_it() {
    let fake = start(OnHangup::Cancel).await;
    let control = Control::new(fake.toy.clone());
    let held = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/hold", fake.api))
            .send(),
    );
    while fake.toy.kit.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let toy = fake.toy.clone();
    let shutdown = tokio::spawn(async move { fake.tasks.shutdown(&toy.kit).await });
    tokio::task::yield_now().await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the held request"
    );
    fake.toy.release.notify_waiters();
    shutdown.await.unwrap();
    let reply = held.await.unwrap().unwrap();
    assert_eq!(reply.text().await.unwrap(), "released");
    control.idle().await;
    assert_eq!(fake.toy.kit.in_flight(), 0);
    assert!(
        reqwest::Client::new()
            .post(format!("{}/count", fake.api))
            .send()
            .await
            .is_err(),
        "no new connection after shutdown"
    );
}

#[tokio::test]
async fn a_request_whose_client_hangs_up_finishes_or_is_cancelled() {
    for (on_hangup, counted) in [(OnHangup::Finish, 1), (OnHangup::Cancel, 0)] {
        let fake = start(on_hangup).await;
        let held = tokio::spawn(
            reqwest::Client::new()
                .post(format!("{}/hold", fake.api))
                .send(),
        );
        while fake.toy.kit.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        held.abort();
        let _ = held.await;
        if on_hangup == OnHangup::Finish {
            // The request outlives its client; release it and wait until it is done.
            while fake.toy.kit.in_flight() == 1 {
                fake.toy.release.notify_waiters();
                tokio::task::yield_now().await;
            }
        }
        Control::new(fake.toy.clone()).idle().await;
        assert_eq!(
            fake.toy.count.load(Ordering::SeqCst),
            counted,
            "{on_hangup:?}"
        );
    }
}

#[tokio::test]
async fn the_control_api_wants_the_token_and_steers_the_clock() {
    let fake = start(OnHangup::Cancel).await;
    let client = reqwest::Client::new();
    let state = format!("{}/_fake/state", fake.control);
    assert_eq!(client.get(&state).send().await.unwrap().status(), 401);
    assert_eq!(
        client
            .get(&state)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let advance = |seconds: serde_json::Value| {
        client
            .post(format!("{}/_fake/clock/advance", fake.control))
            .bearer_auth(&fake.token)
            .json(&serde_json::json!({ "seconds": seconds }))
            .send()
    };
    let moved: serde_json::Value = advance(90.into()).await.unwrap().json().await.unwrap();
    assert_eq!(moved["now"], TEST_EPOCH.unix_timestamp() + 90);
    assert_eq!(fake.toy.ticks.load(Ordering::SeqCst), 1);
    assert_eq!(advance((-1).into()).await.unwrap().status(), 400);
    let seeded = client
        .post(format!("{}/_fake/seed", fake.control))
        .bearer_auth(&fake.token)
        .json(&serde_json::json!({"seed": 41}))
        .send()
        .await
        .unwrap();
    assert_eq!(seeded.status(), 204);
    let faults = client
        .post(format!("{}/_fake/faults", fake.control))
        .bearer_auth(&fake.token)
        .json(&serde_json::json!({"method": "*", "path": "/**", "action": {"delay_ms": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(faults.status(), 204);
    let count = client
        .post(format!("{}/count", fake.api))
        .send()
        .await
        .unwrap();
    assert_eq!(count.text().await.unwrap(), "42");
    let requests: serde_json::Value = client
        .get(format!("{}/_fake/requests", fake.control))
        .bearer_auth(&fake.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        requests,
        serde_json::json!([{"method": "POST", "path": "/count", "query": null, "transport": "tcp", "status": 200}])
    );
}

#[test]
fn a_system_clock_moves_forward_by_what_advance_adds() {
    let clock = fake_kit::Clock::new(ClockMode::System);
    let before = OffsetDateTime::now_utc();
    clock.advance(time::Duration::days(1));
    let now = clock.now();
    assert!(now >= before + time::Duration::days(1), "{now} vs {before}");
    assert!(now <= OffsetDateTime::now_utc() + time::Duration::days(1));
    let manual = fake_kit::Clock::new(ClockMode::Manual(TEST_EPOCH));
    manual.advance(time::Duration::SECOND);
    assert_eq!(manual.now(), TEST_EPOCH + time::Duration::SECOND);
}

#[tokio::test]
async fn the_control_counts_connections_clears_faults_and_waits_for_idle() {
    let fake = start(OnHangup::Cancel).await;
    let control = Control::new(fake.toy.clone());
    let url = format!("{}/count", fake.api);
    // Two clients, two connections; one client's second request reuses its connection.
    let first = reqwest::Client::new();
    first.post(&url).send().await.unwrap();
    first.post(&url).send().await.unwrap();
    reqwest::Client::new().post(&url).send().await.unwrap();
    assert_eq!(control.connections(), 2);

    control.add_fault(fault(
        "*",
        "/**",
        None,
        Action::Status {
            status: 503,
            body: None,
            headers: None,
        },
    ));
    assert_eq!(first.post(&url).send().await.unwrap().status(), 503);
    control.clear_faults();
    assert_eq!(first.post(&url).send().await.unwrap().status(), 200);

    // `idle` returns only once the held request is done.
    let held = tokio::spawn(first.post(format!("{}/hold", fake.api)).send());
    while fake.toy.kit.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    let idle = tokio::spawn({
        let control = control.clone();
        async move { control.idle().await }
    });
    tokio::task::yield_now().await;
    assert!(!idle.is_finished(), "idle waits for the held request");
    fake.toy.release.notify_waiters();
    idle.await.unwrap();
    assert_eq!(fake.toy.kit.in_flight(), 0);
    assert_eq!(held.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn the_control_api_resets_and_clears_faults_over_http() {
    let fake = start(OnHangup::Cancel).await;
    let client = reqwest::Client::new();
    let url = format!("{}/count", fake.api);
    client.post(&url).send().await.unwrap();
    let control = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}/_fake/{path}", fake.control))
            .bearer_auth(&fake.token)
    };
    let added = control(reqwest::Method::POST, "faults")
        .json(&serde_json::json!({"method": "*", "path": "/**", "action": {"status": 500}}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 204);
    assert_eq!(client.post(&url).send().await.unwrap().status(), 500);
    let cleared = control(reqwest::Method::DELETE, "faults")
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), 204);
    assert_eq!(
        client
            .post(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "2"
    );
    let reset = control(reqwest::Method::POST, "reset")
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 204);
    assert_eq!(fake.toy.count.load(Ordering::SeqCst), 0);
    let requests: serde_json::Value = control(reqwest::Method::GET, "requests")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(requests, serde_json::json!([]));
}

/// Who called: the fingerprint of the client certificate, if any, as the extension says.
async fn whoami(axum::Extension(caller): axum::Extension<Option<String>>) -> String {
    caller.unwrap_or_else(|| "anonymous".to_owned())
}

/// The toy behind TLS that asks for client certificates without requiring them, and on a unix
/// socket; each request carries the client certificate's fingerprint.
#[tokio::test]
async fn tls_takes_any_client_certificate_or_none_and_unix_sockets_serve() {
    let identity = fake_kit::tls::server_identity(&fake_kit::tls::ServerCert {
        names: &["localhost"],
        organization: None,
        common_name: None,
        p384: false,
        client_certs: true,
        alpn: false,
    })
    .unwrap();
    let toy = Toy::new();
    let router = Router::new().route("/whoami", axum::routing::get(whoami));
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let api = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("unix.socket");
    let unix = tokio::net::UnixListener::bind(&socket).unwrap();
    let mut tasks = Tasks::default();
    tasks.spawn(fake_kit::serve::accept_tcp(
        listener,
        Some(tokio_rustls::TlsAcceptor::from(identity.config.clone())),
        Service::new(toy.clone(), router.clone(), Some("https"), OnHangup::Cancel),
        |der: Option<&[u8]>| der.map(fake_kit::tls::fingerprint),
    ));
    tasks.spawn(fake_kit::serve::accept_unix(
        unix,
        Service::new(toy.clone(), router, Some("unix"), OnHangup::Cancel),
        Some("local".to_owned()),
    ));

    let server_cert = reqwest::Certificate::from_pem(identity.cert_pem.as_bytes()).unwrap();
    let client = fake_kit::tls::ClientCert::generate("joiner");
    let with_cert = reqwest::Client::builder()
        .add_root_certificate(server_cert.clone())
        .identity(
            reqwest::Identity::from_pem(
                format!("{}{}", client.cert_pem, client.key_pem).as_bytes(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let reply = with_cert.get(format!("{api}/whoami")).send().await.unwrap();
    assert_eq!(reply.text().await.unwrap(), client.fingerprint);
    let without = reqwest::Client::builder()
        .add_root_certificate(server_cert)
        .build()
        .unwrap();
    let reply = without.get(format!("{api}/whoami")).send().await.unwrap();
    assert_eq!(reply.text().await.unwrap(), "anonymous");

    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("local"), "{reply}");
    let transports: Vec<_> = toy.kit.requests().iter().map(|r| r.transport).collect();
    assert_eq!(transports, [Some("https"), Some("https"), Some("unix")]);
}
