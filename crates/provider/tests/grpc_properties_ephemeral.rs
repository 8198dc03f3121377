//! The ephemeral `oci_identity_auth_token` through the gRPC service in-process (protocol 6,
//! and protocol 5 through `v5`): random sequences of Open, Renew and Close, with injected
//! server errors and dropped connections, against fake-oci.
//!
//! After every step: no user holds more than two tokens; every token on the server belongs to
//! an Open that succeeded and was not closed yet, or was named (token OCID and user) by the
//! error of a Close that failed; no diagnostic carries a secret. At the end, with the faults
//! gone, closing what is open leaves only the reported tokens. Close gets Open's private data,
//! also after a Renew, as Terraform sends it.
//! Each injected fault costs the client a backoff of about a second, so the case counts are
//! small; raise `PROPTEST_CASES` locally for more.

#[allow(dead_code)]
#[path = "grpc_properties/schema.rs"]
mod schema;
#[allow(dead_code)]
#[path = "grpc_properties/value.rs"]
mod value;

use std::collections::BTreeSet;
use std::sync::Arc;

use fake_oci::{FakeOci, TEST_PUBLIC_KEY, TEST_TENANCY, TEST_USER};
use proptest::prelude::*;
use prost::Message;
use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use tonic::Request;

use schema::block6;
use value::{Tv, decode, encode};

const TYPE: &str = "oci_identity_auth_token";
const OTHER_USER: &str = "ocid1.user.oc1..aaaaaaaaephemeralotheruser";
const USERS: [&str; 2] = [TEST_USER, OTHER_USER];

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    ResetBefore,
    ResetAfter,
}

#[derive(Debug, Clone)]
enum Op {
    Open(usize),
    Renew(usize),
    Close(usize),
    /// The next `times` requests of `method` fail with `fault`.
    Fault(&'static str, Fault, u32),
}

fn op() -> impl Strategy<Value = Op> {
    let fault = prop_oneof![
        Just(Fault::Status(500)),
        Just(Fault::Status(503)),
        Just(Fault::Status(429)),
        Just(Fault::ResetBefore),
        Just(Fault::ResetAfter),
    ];
    prop_oneof![
        4 => (0usize..2).prop_map(Op::Open),
        1 => (0usize..4).prop_map(Op::Renew),
        3 => (0usize..4).prop_map(Op::Close),
        2 => (proptest::sample::select(&["POST", "DELETE", "GET"][..]), fault, 1u32..3)
            .prop_map(|(m, f, n)| Op::Fault(m, f, n)),
    ]
}

fn recode<A: Message, B: Message + Default>(a: &A) -> B {
    B::decode(a.encode_to_vec().as_slice()).expect("protocol 5 and 6 messages are twins")
}

enum Front {
    V6(Arc<provider::core::Service<provider::oci::OciProvider>>),
    V5(provider::v5::V5<provider::oci::OciProvider>),
}

/// Calls `$m6` of protocol 6, or `$m5` of protocol 5 with request and reply re-read.
macro_rules! call {
    ($front:expr, $m:ident, $req:expr) => {
        call!($front, $m, $m, $req)
    };
    ($front:expr, $m6:ident, $m5:ident, $req:expr) => {{
        let req = $req;
        match $front {
            Front::V6(s) => {
                use v6::provider_server::Provider as _;
                s.$m6(Request::new(req))
                    .await
                    .expect(stringify!($m6))
                    .into_inner()
            }
            Front::V5(s) => {
                use v5::provider_server::Provider as _;
                recode(
                    &s.$m5(Request::new(recode(&req)))
                        .await
                        .expect(stringify!($m5))
                        .into_inner(),
                )
            }
        }
    }};
}

fn texts(diags: &[v6::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| format!("{} {}", d.summary, d.detail))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_error(diags: &[v6::Diagnostic]) -> bool {
    diags
        .iter()
        .any(|d| d.severity == v6::diagnostic::Severity::Error as i32)
}

/// The tokens on the server that count towards the limit: (user, token OCID).
fn alive(fake: &FakeOci) -> Vec<(String, String)> {
    fake.control().state()["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["user_id"].as_str().unwrap_or_default().to_owned(),
                t["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn secrets(fake: &FakeOci) -> Vec<String> {
    fake.control().state()["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["secret"].as_str().map(str::to_owned))
        .collect()
}

async fn run(ops: Vec<Op>, v5: bool) {
    let fake = FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .expect("fake-oci starts");
    let control = fake.control();
    control
        .add_user(TEST_TENANCY, OTHER_USER, TEST_PUBLIC_KEY)
        .expect("second user");
    let service = Arc::new(provider::core::Service::new(Arc::new(
        provider::oci::OciProvider::default(),
    )));
    let front = if v5 {
        Front::V5(provider::v5::V5::new(service))
    } else {
        Front::V6(service)
    };
    let schemas: v6::get_provider_schema::Response =
        call!(&front, get_provider_schema, get_schema, Default::default());
    let provider_block = block6(
        schemas
            .provider
            .as_ref()
            .and_then(|p| p.block.as_ref())
            .unwrap(),
    );
    let ephemeral_block = block6(
        schemas.ephemeral_resource_schemas[TYPE]
            .block
            .as_ref()
            .expect("ephemeral schema"),
    );
    let id = fake.test_identity();
    let provider_config = provider_block.complete(&Tv::obj([
        ("tenancy_ocid", Tv::s(&id.tenancy)),
        ("user_ocid", Tv::s(&id.user)),
        ("fingerprint", Tv::s(&id.fingerprint)),
        ("private_key", Tv::s(&id.private_key_pem)),
        ("region", Tv::s("us-ashburn-1")),
        ("endpoint", Tv::s(&fake.endpoint())),
        ("retry_duration_seconds", Tv::Num(4.0)),
    ]));
    let r: v6::configure_provider::Response = call!(
        &front,
        configure_provider,
        configure,
        v6::configure_provider::Request {
            terraform_version: "1.11.4".into(),
            config: Some(v6::DynamicValue {
                msgpack: encode(&provider_config),
                json: Vec::new(),
            }),
            ..Default::default()
        }
    );
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));

    // Open handles: (private bytes of Open, token OCID), and the tokens failed Closes named.
    let mut open: Vec<(Vec<u8>, String)> = Vec::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut all_diags = String::new();
    for op in ops.into_iter().chain([Op::Close(usize::MAX)]) {
        match op {
            Op::Fault(method, fault, times) => {
                let action = match fault {
                    Fault::Status(status) => fake_oci::faults::Action::Status {
                        status,
                        body: None,
                        headers: None,
                    },
                    Fault::ResetBefore => fake_oci::faults::Action::Reset {
                        reset: fake_oci::faults::ResetWhen::Before,
                    },
                    Fault::ResetAfter => fake_oci::faults::Action::Reset {
                        reset: fake_oci::faults::ResetWhen::After,
                    },
                };
                control.add_fault(fake_oci::faults::Rule {
                    method: method.into(),
                    path: "/20160918/users/**".into(),
                    times: Some(times),
                    action,
                });
            }
            Op::Open(user) => {
                let config = ephemeral_block.complete(&Tv::obj([
                    ("user_id", Tv::s(USERS[user])),
                    ("description", Tv::s("property")),
                ]));
                let r: v6::open_ephemeral_resource::Response = call!(
                    &front,
                    open_ephemeral_resource,
                    v6::open_ephemeral_resource::Request {
                        type_name: TYPE.into(),
                        config: Some(v6::DynamicValue {
                            msgpack: encode(&config),
                            json: Vec::new(),
                        }),
                        client_capabilities: None,
                    }
                );
                all_diags.push_str(&texts(&r.diagnostics));
                if !is_error(&r.diagnostics) {
                    let result = decode(&r.result.expect("a result").msgpack);
                    assert_eq!(result.get("state").as_str(), Some("ACTIVE"));
                    assert_eq!(result.get("user_id").as_str(), Some(USERS[user]));
                    let token_id = result.get("id").as_str().unwrap().to_owned();
                    open.push((r.private.expect("private data"), token_id));
                } else {
                    assert!(r.result.is_none() && r.private.is_none());
                }
            }
            Op::Renew(idx) => {
                if open.is_empty() {
                    continue;
                }
                let (private, _) = &open[idx % open.len()];
                let r: v6::renew_ephemeral_resource::Response = call!(
                    &front,
                    renew_ephemeral_resource,
                    v6::renew_ephemeral_resource::Request {
                        type_name: TYPE.into(),
                        private: Some(private.clone()),
                    }
                );
                assert!(r.renew_at.is_none());
                assert!(!is_error(&r.diagnostics));
            }
            Op::Close(idx) => {
                let closing: Vec<(Vec<u8>, String)> = if idx == usize::MAX {
                    control.clear_faults();
                    std::mem::take(&mut open)
                } else if open.is_empty() {
                    continue;
                } else {
                    vec![open.remove(idx % open.len())]
                };
                for (private, token_id) in closing {
                    let r: v6::close_ephemeral_resource::Response = call!(
                        &front,
                        close_ephemeral_resource,
                        v6::close_ephemeral_resource::Request {
                            type_name: TYPE.into(),
                            private: Some(private),
                        }
                    );
                    all_diags.push_str(&texts(&r.diagnostics));
                    if is_error(&r.diagnostics) {
                        let text = texts(&r.diagnostics);
                        assert!(idx != usize::MAX, "a Close without faults failed: {text}");
                        assert!(text.contains(&token_id), "{text}");
                        reported.insert(token_id);
                    }
                }
            }
        }
        control.idle().await;
        let alive = alive(&fake);
        for user in USERS {
            let held = alive.iter().filter(|(u, _)| u == user).count();
            assert!(held <= 2, "{user} holds {held} tokens");
        }
        for (_, token) in &alive {
            assert!(
                open.iter().any(|(_, t)| t == token) || reported.contains(token),
                "token {token} leaked: no open handle holds it and no error named it"
            );
        }
        for secret in secrets(&fake) {
            assert!(
                !all_diags.contains(&secret),
                "a secret reached a diagnostic"
            );
        }
    }
    assert!(open.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6570_6836),
        ..ProptestConfig::default()
    })]
    #[test]
    fn ephemeral_auth_tokens_never_leak_over_protocol_6(ops in proptest::collection::vec(op(), 1..8)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops, false));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6570_6835),
        ..ProptestConfig::default()
    })]
    #[test]
    fn ephemeral_auth_tokens_never_leak_over_protocol_5(ops in proptest::collection::vec(op(), 1..8)) {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run(ops, true));
    }
}

/// A Close that cannot delete is an error naming the token and its user, and the token is
/// still there to be deleted by hand; a failed Open (the user's two slots are taken) leaves
/// nothing behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_close_names_token_and_user_and_a_failed_open_leaves_nothing() {
    let fake = FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .expect("fake-oci starts");
    let control = fake.control();
    let front = Front::V6(Arc::new(provider::core::Service::new(Arc::new(
        provider::oci::OciProvider::default(),
    ))));
    let schemas: v6::get_provider_schema::Response =
        call!(&front, get_provider_schema, get_schema, Default::default());
    let provider_block = block6(
        schemas
            .provider
            .as_ref()
            .and_then(|p| p.block.as_ref())
            .unwrap(),
    );
    let ephemeral_block = block6(
        schemas.ephemeral_resource_schemas[TYPE]
            .block
            .as_ref()
            .unwrap(),
    );
    let id = fake.test_identity();
    let provider_config = provider_block.complete(&Tv::obj([
        ("tenancy_ocid", Tv::s(&id.tenancy)),
        ("user_ocid", Tv::s(&id.user)),
        ("fingerprint", Tv::s(&id.fingerprint)),
        ("private_key", Tv::s(&id.private_key_pem)),
        ("region", Tv::s("us-ashburn-1")),
        ("endpoint", Tv::s(&fake.endpoint())),
        ("retry_duration_seconds", Tv::Num(2.0)),
    ]));
    let r: v6::configure_provider::Response = call!(
        &front,
        configure_provider,
        configure,
        v6::configure_provider::Request {
            config: Some(v6::DynamicValue {
                msgpack: encode(&provider_config),
                json: Vec::new()
            }),
            ..Default::default()
        }
    );
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
    let config = ephemeral_block.complete(&Tv::obj([
        ("user_id", Tv::s(TEST_USER)),
        ("description", Tv::s("close fails")),
    ]));
    let open_req = || v6::open_ephemeral_resource::Request {
        type_name: TYPE.into(),
        config: Some(v6::DynamicValue {
            msgpack: encode(&config),
            json: Vec::new(),
        }),
        client_capabilities: None,
    };
    let mut privates = Vec::new();
    for _ in 0..2 {
        let r: v6::open_ephemeral_resource::Response =
            call!(&front, open_ephemeral_resource, open_req());
        assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
        privates.push(r.private.unwrap());
    }
    // A third token is refused by the service; nothing is left of it.
    let r: v6::open_ephemeral_resource::Response =
        call!(&front, open_ephemeral_resource, open_req());
    assert!(is_error(&r.diagnostics) && r.private.is_none());
    assert_eq!(alive(&fake).len(), 2);

    control.add_fault(fake_oci::faults::Rule {
        method: "DELETE".into(),
        path: "/20160918/users/**".into(),
        times: None,
        action: fake_oci::faults::Action::Status {
            status: 500,
            body: None,
            headers: None,
        },
    });
    let r: v6::close_ephemeral_resource::Response = call!(
        &front,
        close_ephemeral_resource,
        v6::close_ephemeral_resource::Request {
            type_name: TYPE.into(),
            private: Some(privates[0].clone())
        }
    );
    let text = texts(&r.diagnostics);
    assert!(is_error(&r.diagnostics), "{text}");
    let token_id = alive(&fake)
        .into_iter()
        .map(|(_, t)| t)
        .find(|t| text.contains(t.as_str()));
    assert!(
        token_id.is_some(),
        "the error names the token's OCID: {text}"
    );
    assert!(text.contains(TEST_USER), "the error names the user: {text}");
    assert_eq!(
        alive(&fake).len(),
        2,
        "the token is still there to delete by hand"
    );

    control.clear_faults();
    for private in privates {
        let r: v6::close_ephemeral_resource::Response = call!(
            &front,
            close_ephemeral_resource,
            v6::close_ephemeral_resource::Request {
                type_name: TYPE.into(),
                private: Some(private)
            }
        );
        assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
    }
    assert!(
        alive(&fake).is_empty(),
        "closing again (already gone is success) frees both slots"
    );
}

/// The ephemeral `lxd_trust_token` over protocol 6 against fake-lxd: Close revokes a pending
/// token, finds a used one already done, keeps one with `revoke_on_close = false`, and when
/// the revocation fails names the token's operation; Close after a Renew gets Open's private
/// data and still works.
#[tokio::test(flavor = "multi_thread")]
async fn lxd_close_revokes_keeps_or_reports() {
    use fake_lxd::FakeLxd;
    use v6::provider_server::Provider as _;

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("unix.socket");
    let fake = FakeLxd::start(fake_lxd::Config {
        unix_socket: Some(socket.clone()),
        ..fake_lxd::Config::for_testing()
    })
    .await
    .expect("fake-lxd starts");
    let control = fake.control();
    let service = provider::core::Service::new(Arc::new(provider::lxd::LxdProvider::default()));
    let schemas = service
        .get_provider_schema(Request::new(Default::default()))
        .await
        .unwrap()
        .into_inner();
    let provider_block = block6(
        schemas
            .provider
            .as_ref()
            .and_then(|p| p.block.as_ref())
            .unwrap(),
    );
    let block = block6(
        schemas.ephemeral_resource_schemas["lxd_trust_token"]
            .block
            .as_ref()
            .unwrap(),
    );
    let provider_config = provider_block.complete(&Tv::obj([
        (
            "config_dir",
            Tv::s(&dir.path().join("lxc").display().to_string()),
        ),
        (
            "remote",
            Tv::List(vec![Tv::obj([
                ("name", Tv::s("fake")),
                ("address", Tv::s(&format!("unix://{}", socket.display()))),
                ("default", Tv::Bool(true)),
            ])]),
        ),
    ]));
    let r = service
        .configure_provider(Request::new(v6::configure_provider::Request {
            config: Some(v6::DynamicValue {
                msgpack: encode(&provider_config),
                json: Vec::new(),
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
    let open = |name: &str, revoke: Option<bool>| {
        let mut config = Tv::obj([("name", Tv::s(name))]);
        if let Some(revoke) = revoke {
            config.set("revoke_on_close", Tv::Bool(revoke));
        }
        v6::open_ephemeral_resource::Request {
            type_name: "lxd_trust_token".into(),
            config: Some(v6::DynamicValue {
                msgpack: encode(&block.complete(&config)),
                json: Vec::new(),
            }),
            client_capabilities: None,
        }
    };
    let close = |private: Vec<u8>| v6::close_ephemeral_resource::Request {
        type_name: "lxd_trust_token".into(),
        private: Some(private),
    };
    let pending = || control.pending_tokens().len();

    // Revoked on close, also after a Renew (Close gets Open's private data).
    let opened = service
        .open_ephemeral_resource(Request::new(open("a", None)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !is_error(&opened.diagnostics),
        "{}",
        texts(&opened.diagnostics)
    );
    let result = decode(&opened.result.unwrap().msgpack);
    assert_eq!(result.get("revoke_on_close"), &Tv::Bool(true));
    let token = result.get("token").as_str().unwrap().to_owned();
    let private = opened.private.unwrap();
    assert!(
        !String::from_utf8_lossy(&private).contains(&token),
        "no secret in private data"
    );
    assert_eq!(pending(), 1);
    service
        .renew_ephemeral_resource(Request::new(v6::renew_ephemeral_resource::Request {
            type_name: "lxd_trust_token".into(),
            private: Some(private.clone()),
        }))
        .await
        .unwrap();
    let r = service
        .close_ephemeral_resource(Request::new(close(private)))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
    assert_eq!(pending(), 0);

    // A used token: Close succeeds, nothing to revoke.
    let opened = service
        .open_ephemeral_resource(Request::new(open("b", None)))
        .await
        .unwrap()
        .into_inner();
    let token = decode(&opened.result.unwrap().msgpack)
        .get("token")
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(control.consume(&token, None).0, 201);
    let r = service
        .close_ephemeral_resource(Request::new(close(opened.private.unwrap())))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));

    // revoke_on_close = false: the token outlives Close.
    let opened = service
        .open_ephemeral_resource(Request::new(open("c", Some(false))))
        .await
        .unwrap()
        .into_inner();
    let r = service
        .close_ephemeral_resource(Request::new(close(opened.private.unwrap())))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_error(&r.diagnostics));
    assert_eq!(pending(), 1);

    // A revocation the server refuses: an error naming the operation; the token stays.
    let opened = service
        .open_ephemeral_resource(Request::new(open("d", None)))
        .await
        .unwrap()
        .into_inner();
    let operation = decode(&opened.result.unwrap().msgpack)
        .get("operation_id")
        .as_str()
        .unwrap()
        .to_owned();
    control.add_fault(fake_lxd::faults::Rule {
        method: "DELETE".into(),
        path: "/1.0/operations/*".into(),
        times: None,
        action: fake_lxd::faults::Action::Status {
            status: 403,
            body: None,
            headers: None,
        },
    });
    let r = service
        .close_ephemeral_resource(Request::new(close(opened.private.unwrap())))
        .await
        .unwrap()
        .into_inner();
    let text = texts(&r.diagnostics);
    assert!(
        is_error(&r.diagnostics) && text.contains(&operation),
        "{text}"
    );
    assert_eq!(pending(), 2);
    control.clear_faults();

    // Bad input names the attribute; an unknown name cannot be opened without a deferral.
    let r = service
        .validate_ephemeral_resource_config(Request::new(
            v6::validate_ephemeral_resource_config::Request {
                type_name: "lxd_trust_token".into(),
                config: Some(v6::DynamicValue {
                    msgpack: encode(&block.complete(&Tv::obj([("name", Tv::s("-x"))]))),
                    json: Vec::new(),
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(is_error(&r.diagnostics));
    assert_eq!(r.diagnostics[0].attribute.as_ref().unwrap().steps.len(), 1);
    let mut unknown = open("e", None);
    unknown.config = Some(v6::DynamicValue {
        msgpack: encode(&block.complete(&Tv::obj([("name", Tv::Unknown)]))),
        json: Vec::new(),
    });
    let r = service
        .open_ephemeral_resource(Request::new(unknown.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(
        is_error(&r.diagnostics) && r.private.is_none(),
        "{}",
        texts(&r.diagnostics)
    );
    unknown.client_capabilities = Some(v6::ClientCapabilities {
        deferral_allowed: true,
        ..Default::default()
    });
    let r = service
        .open_ephemeral_resource(Request::new(unknown))
        .await
        .unwrap()
        .into_inner();
    assert!(!is_error(&r.diagnostics));
    assert_eq!(
        r.deferred.unwrap().reason,
        v6::deferred::Reason::ResourceConfigUnknown as i32
    );
    assert_eq!(pending(), 2, "a deferred Open makes nothing");
}
