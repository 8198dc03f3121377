//! The lxd provider's configuration numbers: any `port` is a TCP port or an error on
//! `remote[i].port`, at validation, and configuration refuses it before any connection.
//! Then `lxd_trust_token` against fake-lxd, through the provider's methods: the checks a plan
//! and a create make on the server, a refused revocation, and a join during a refresh.

use model::diag::Severity;
use model::value::Value;
use proptest::prelude::*;

use super::LxdProvider;
use crate::core::Provider;

fn config(address: &str, port: Option<&str>) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let Value::Object(mut map) = Value::null_block(&model::provider_lxd::schema().block) else {
        unreachable!("a block is an object")
    };
    map.insert(
        "config_dir".into(),
        Value::string(dir.path().to_string_lossy()),
    );
    map.insert(
        "remote".into(),
        Value::List(vec![Value::object([
            ("name", Value::string("r")),
            ("address", Value::string(address)),
            ("port", port.map_or(Value::Null, Value::string)),
            ("protocol", Value::Null),
            ("default", Value::Null),
            ("token", Value::Null),
            ("password", Value::Null),
        ])]),
    );
    (dir, Value::Object(map))
}

fn errors_on(diags: &[model::diag::Diagnostic], path: &str) -> usize {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error && d.path.to_string() == path)
        .count()
}

#[tokio::test]
async fn ports_out_of_range_are_refused_before_connecting() {
    let provider = LxdProvider::default();
    for (address, port) in [
        ("https://127.0.0.1", Some("99999")),
        ("https://127.0.0.1", Some("0")),
        ("https://127.0.0.1", Some("-1")),
        ("https://127.0.0.1", Some("1e20")),
        ("https://127.0.0.1:99999999999999999999", None),
        ("https://127.0.0.1:0", Some("8443")),
    ] {
        let (_dir, config) = config(address, port);
        let diags = provider.configure(&config).await;
        assert_eq!(
            errors_on(&diags, "remote[0]"),
            1,
            "{address} {port:?}: {diags:?}"
        );
        assert!(
            diags[0].detail.contains("1 to 65535"),
            "{address} {port:?}: {diags:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_port_is_a_tcp_port_or_an_error_on_it(
        port in prop_oneof!["[0-9]{1,25}", "-?[0-9]{0,6}(\\.[0-9])?", any::<String>()],
    ) {
        let (_dir, config) = config("https://127.0.0.1", Some(&port));
        let diags = LxdProvider::default().validate_provider(&config);
        // An empty port is unset: the default.
        let valid = port.is_empty() || matches!(port.parse::<u16>(), Ok(p) if p != 0);
        prop_assert_eq!(errors_on(&diags, "remote[0].port"), usize::from(!valid), "{:?}", diags);
        if !valid {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let diags = runtime.block_on(LxdProvider::default().configure(&config));
            prop_assert_eq!(errors_on(&diags, "remote[0]"), 1, "{:?}", diags);
        }
    }
}

/// A fake LXD server (`profile`, manual clock) and a provider configured against its unix
/// socket, as its default remote.
async fn configured(
    profile: fake_lxd::Profile,
) -> (fake_lxd::FakeLxd, LxdProvider, tempfile::TempDir) {
    let fake = fake_lxd::FakeLxd::start(fake_lxd::Config {
        profile,
        ..fake_lxd::Config::for_testing()
    })
    .await
    .expect("fake-lxd starts");
    let address = format!("unix://{}", fake.unix_socket().display());
    let (dir, config) = config(&address, None);
    let provider = LxdProvider::default();
    let diags = provider.configure(&config).await;
    assert!(diags.is_empty(), "{diags:?}");
    (fake, provider, dir)
}

/// The configuration of an `lxd_trust_token` named `name`, restricted to `projects`.
fn token_config(name: &str, projects: &[&str]) -> Value {
    let Value::Object(mut map) = Value::null_block(&model::lxd_trust_token::schema().block) else {
        unreachable!("a block is an object")
    };
    map.insert("name".into(), Value::string(name));
    if !projects.is_empty() {
        map.insert(
            "projects".into(),
            Value::List(projects.iter().map(|p| Value::string(*p)).collect()),
        );
    }
    Value::Object(map)
}

/// Plans and applies the create of `config`: the new state, the private record, diagnostics.
async fn create(
    provider: &LxdProvider,
    config: &Value,
) -> (Option<Value>, Vec<u8>, Vec<model::diag::Diagnostic>) {
    let plan = provider
        .plan(model::lxd_trust_token::NAME, None, config)
        .expect("a plan");
    let ((state, diags), private) = provider
        .apply_private(
            model::lxd_trust_token::NAME,
            None,
            Some(plan.planned),
            config.clone(),
            Vec::new(),
        )
        .await;
    (state, private, diags)
}

/// A token restricted to a project the server does not have could never be used: the apply
/// refuses it on that element of `projects` before any token is made.
#[tokio::test]
async fn a_create_restricted_to_a_missing_project_makes_no_token() {
    let (fake, provider, _dir) = configured(fake_lxd::Profile::V5_0).await;
    let (state, _, diags) = create(&provider, &token_config("web-ci", &["default", "web"])).await;
    assert!(state.is_none(), "{diags:?}");
    assert_eq!(errors_on(&diags, "projects[1]"), 1, "{diags:?}");
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(diags[0].detail.contains("\"web\""), "{diags:?}");
    assert!(fake.control().pending_tokens().is_empty());

    let (state, _, diags) = create(&provider, &token_config("web-ci", &["default"])).await;
    assert!(diags.is_empty(), "{diags:?}");
    assert!(state.is_some());
    assert_eq!(fake.control().pending_tokens().len(), 1);
}

/// A destroy whose revocation the server refuses is an error naming the failure, and the token
/// stays in the state (and pending on the server) for the next destroy.
#[tokio::test]
async fn a_refused_revocation_is_an_error_and_keeps_the_token() {
    use fake_lxd::faults::{Action, Rule};
    let (fake, provider, _dir) = configured(fake_lxd::Profile::V5_0).await;
    let (state, _, diags) = create(&provider, &token_config("ci", &[])).await;
    assert!(diags.is_empty(), "{diags:?}");
    let state = state.expect("a token");
    fake.control().add_fault(Rule {
        method: "DELETE".into(),
        path: "/1.0/operations/*".into(),
        times: None,
        action: Action::Status {
            status: 403,
            body: Some(serde_json::json!("not authorized")),
            headers: None,
        },
    });
    let (kept, diags) = provider
        .apply(
            model::lxd_trust_token::NAME,
            Some(state.clone()),
            None,
            Value::Null,
        )
        .await;
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].severity, Severity::Error);
    assert_eq!(diags[0].summary, "Failed to revoke the trust token");
    assert!(diags[0].detail.contains("not authorized"), "{diags:?}");
    assert!(kept == Some(state), "the token stays in the state");
    assert_eq!(fake.control().pending_tokens().len(), 1);
}

/// A plan that makes a token checks the server: on a server with unique identity names, a
/// name an identity already holds is an error on `name`, and a project the server lacks on
/// its element of `projects`; a free name passes. The second plan of a replacement (no prior
/// state, the private state of the first) is not checked again.
#[tokio::test]
async fn a_plan_for_a_taken_name_or_a_missing_project_is_rejected() {
    let (fake, provider, _dir) = configured(fake_lxd::Profile::V6).await;
    let (state, _, diags) = create(&provider, &token_config("alice", &[])).await;
    assert!(diags.is_empty(), "{diags:?}");
    let token = state
        .expect("a token")
        .get("token")
        .as_str()
        .expect("a token string")
        .to_owned();
    let (status, _, cert) = fake.control().consume(&token, None);
    assert_eq!(status, 201);

    let check = |name: &'static str, projects: &'static [&'static str], private: &'static [u8]| {
        let provider = &provider;
        async move {
            let config = token_config(name, projects);
            let plan = provider
                .plan(model::lxd_trust_token::NAME, None, &config)
                .expect("a plan");
            provider
                .check_plan(model::lxd_trust_token::NAME, None, private, &plan)
                .await
        }
    };
    let diags = check("alice", &[], b"").await;
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(errors_on(&diags, "name"), 1, "{diags:?}");
    assert!(diags[0].detail.contains(&cert.fingerprint), "{diags:?}");

    let diags = check("bob", &[], b"").await;
    assert!(diags.is_empty(), "a free name: {diags:?}");

    let diags = check("bob", &["default", "web"], b"").await;
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(errors_on(&diags, "projects[1]"), 1, "{diags:?}");

    let diags = check("alice", &[], b"{}").await;
    assert!(
        diags.is_empty(),
        "the second plan of a replacement: {diags:?}"
    );
}

/// A client that joins with the token while a refresh looks at it (after the refresh read the
/// trust store, before it read the operation) is seen as the token's consumer by that refresh,
/// not taken for an identity that was there before. A refresh of a token still pending reads
/// its operation once.
#[tokio::test]
async fn a_join_during_a_refresh_is_seen_as_the_consumption() {
    let (fake, provider, _dir) = configured(fake_lxd::Profile::V5_0).await;
    let (state, private, diags) = create(&provider, &token_config("ci", &[])).await;
    assert!(diags.is_empty(), "{diags:?}");
    let state = state.expect("a token");
    let id = state
        .get("operation_id")
        .as_str()
        .expect("an id")
        .to_owned();
    let token = state
        .get("token")
        .as_str()
        .expect("a token string")
        .to_owned();
    let operation = format!("/1.0/operations/{id}");
    let answered = |path: &str| {
        fake.control()
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == path && r.status.is_some())
            .count()
    };
    let reads = answered(&operation);
    let (pending, _) = provider
        .read_private(model::lxd_trust_token::NAME, state.clone(), private.clone())
        .await;
    assert_eq!(
        pending.0.expect("a token").get("status").as_str(),
        Some("pending")
    );
    assert_eq!(
        answered(&operation),
        reads,
        "a pending token's listing is enough: no read of its operation"
    );
    let listings = answered("/1.0/certificates");
    let operations = answered("/1.0/operations");
    let join = async {
        // The fake logs a request once it has answered it: the refresh has just read the
        // trust store, and has not listed the operations yet.
        while answered("/1.0/certificates") == listings {
            tokio::task::yield_now().await;
        }
        assert_eq!(answered("/1.0/operations"), operations);
        fake.control().consume(&token, None)
    };
    let (((refreshed, diags), _), (status, _, cert)) = tokio::join!(
        provider.read_private(model::lxd_trust_token::NAME, state, private),
        join
    );
    assert_eq!(status, 201);
    assert!(diags.is_empty(), "{diags:?}");
    let refreshed = refreshed.expect("the token stays in the state");
    assert_eq!(refreshed.get("status").as_str(), Some("consumed"));
    assert_eq!(
        refreshed.get("consumed_by").as_str(),
        Some(cert.fingerprint.as_str())
    );
}
