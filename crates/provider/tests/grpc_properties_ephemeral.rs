//! The ephemeral resources through the gRPC service in-process (protocol 6, and protocol 5
//! through `v5`): random sequences of Open, Renew and Close, with injected server errors and
//! dropped connections, against the fakes. One runner drives both providers; each brings its
//! fake, its configurations and its faults (a [`Subject`]).
//!
//! After every step: every token on the server belongs to an Open that succeeded and was not
//! closed yet, or to a closed one with `revoke_on_close = false` (LXD), or was named by the
//! error of a Close that failed (OCI: token OCID and user; LXD: the operation); no user holds
//! more than two OCI tokens; no diagnostic carries a secret. At the end, with the faults gone,
//! closing what is open leaves only the kept and the reported tokens. Close gets Open's private
//! data, also after a Renew, as Terraform sends it.
//! Each injected fault costs the client a backoff of about a second, so the case counts are
//! small; raise `PROPTEST_CASES` locally for more.
//!
//! The LXD client never sends a create again when it may have acted (a 5xx, a dropped
//! connection or a timeout): it watches for the token for one more request timeout (30 s)
//! before it decides. Such faults on the create, and timeouts, cost half a minute each, so they
//! are not drawn at random: `lxd_create_whose_answer_is_lost_is_adopted_and_revoked` and
//! `lxd_revoke_that_times_out_is_sent_again` run them once each.

#[allow(dead_code)]
#[path = "grpc_properties/schema.rs"]
mod schema;
#[allow(dead_code)]
#[path = "grpc_properties/value.rs"]
mod value;

use std::collections::BTreeSet;
use std::sync::Arc;

use fake_lxd::FakeLxd;
use fake_oci::faults::{Action, ResetWhen, Rule};
use fake_oci::{FakeOci, TEST_PUBLIC_KEY, TEST_TENANCY, TEST_USER};
use proptest::prelude::*;
use prost::Message;
use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use tonic::Request;

use schema::{BlockS as Block, block6};
use value::{Tv, decode, encode};

const TYPE: &str = "oci_identity_auth_token";
const OTHER_USER: &str = "ocid1.user.oc1..aaaaaaaaephemeralotheruser";
const USERS: [&str; 2] = [TEST_USER, OTHER_USER];
const LXD_NAMES: [&str; 2] = ["joiner-a", "joiner-b"];

#[derive(Debug, Clone, Copy)]
enum Fault {
    Status(u16),
    ResetBefore,
    ResetAfter,
}

#[derive(Debug, Clone)]
enum Op {
    /// Open with the configuration of slot `.0` (a user, or a token name); `.1` is LXD's
    /// `revoke_on_close`.
    Open(usize, bool),
    Renew(usize),
    Close(usize),
    /// The next `times` requests of `method` to `path` fail with `fault`.
    Fault(&'static str, &'static str, Fault, u32),
}

/// The faults each fake gets at random: (method, path glob, faults).
type Menu = &'static [(&'static str, &'static str, &'static [Fault])];

const OCI_FAULTS: Menu = &[
    (
        "POST",
        "/20160918/users/**",
        &[
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(429),
            Fault::ResetBefore,
            Fault::ResetAfter,
        ],
    ),
    (
        "DELETE",
        "/20160918/users/**",
        &[
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(429),
            Fault::ResetBefore,
            Fault::ResetAfter,
        ],
    ),
    (
        "GET",
        "/20160918/users/**",
        &[
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(429),
            Fault::ResetBefore,
            Fault::ResetAfter,
        ],
    ),
];

/// A create only gets refusals here (see the header); reads and revocations get everything.
const LXD_FAULTS: Menu = &[
    (
        "POST",
        "/1.0/certificates",
        &[Fault::Status(400), Fault::Status(403)],
    ),
    (
        "DELETE",
        "/1.0/operations/*",
        &[
            Fault::Status(500),
            Fault::Status(503),
            Fault::Status(403),
            Fault::ResetBefore,
            Fault::ResetAfter,
        ],
    ),
    (
        "GET",
        "/1.0/**",
        &[
            Fault::Status(500),
            Fault::Status(503),
            Fault::ResetBefore,
            Fault::ResetAfter,
        ],
    ),
];

fn op(menu: Menu) -> impl Strategy<Value = Op> {
    let fault = proptest::sample::select(menu).prop_flat_map(|(method, path, faults)| {
        (proptest::sample::select(faults), 1u32..3)
            .prop_map(move |(fault, times)| Op::Fault(method, path, fault, times))
    });
    prop_oneof![
        4 => (0usize..2, proptest::bool::weighted(0.8)).prop_map(|(slot, revoke)| Op::Open(slot, revoke)),
        1 => (0usize..4).prop_map(Op::Renew),
        3 => (0usize..4).prop_map(Op::Close),
        2 => fault,
    ]
}

fn recode<A: Message, B: Message + Default>(a: &A) -> B {
    B::decode(a.encode_to_vec().as_slice()).expect("protocol 5 and 6 messages are twins")
}

enum Front<P: provider::core::Provider> {
    V6(Arc<provider::core::Service<P>>),
    V5(provider::v5::V5<P>),
}

impl<P: provider::core::Provider> Front<P> {
    fn new(provider: P, v5: bool) -> Front<P> {
        let service = Arc::new(provider::core::Service::new(Arc::new(provider)));
        if v5 {
            Front::V5(provider::v5::V5::new(service))
        } else {
            Front::V6(service)
        }
    }
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

fn oci_secrets(fake: &FakeOci) -> Vec<String> {
    fake.control().state()["tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["secret"].as_str().map(str::to_owned))
        .collect()
}

/// Every secret fake-lxd issued (its manual clock keeps finished operations listed).
fn lxd_secrets(fake: &FakeLxd) -> Vec<String> {
    fake.control().state()["operations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|op| [&op["metadata"]["secret"], &op["token"]])
        .filter_map(|s| s.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
        .collect()
}

fn dynamic(value: &Tv) -> Option<v6::DynamicValue> {
    Some(v6::DynamicValue {
        msgpack: encode(value),
        json: Vec::new(),
    })
}

/// One provider against its fake: what the runner needs to know of either.
enum Subject {
    Oci {
        fake: FakeOci,
        front: Front<provider::oci::OciProvider>,
        block: Block,
    },
    Lxd {
        fake: FakeLxd,
        front: Front<provider::lxd::LxdProvider>,
        block: Block,
        _dir: tempfile::TempDir,
    },
}

/// Calls one RPC on whichever provider the subject has.
macro_rules! rpc {
    ($subject:expr, $m:ident, $req:expr) => {
        match $subject {
            Subject::Oci { front, .. } => call!(front, $m, $req),
            Subject::Lxd { front, .. } => call!(front, $m, $req),
        }
    };
}

impl Subject {
    async fn oci(v5: bool) -> Subject {
        let fake = FakeOci::start(fake_oci::Config {
            clock: fake_oci::ClockMode::System,
            ..fake_oci::Config::for_testing()
        })
        .await
        .expect("fake-oci starts");
        fake.control()
            .add_user(TEST_TENANCY, OTHER_USER, TEST_PUBLIC_KEY)
            .expect("second user");
        let front = Front::new(provider::oci::OciProvider::default(), v5);
        let schemas: v6::get_provider_schema::Response =
            call!(&front, get_provider_schema, get_schema, Default::default());
        let provider_block = block6(
            schemas
                .provider
                .as_ref()
                .and_then(|p| p.block.as_ref())
                .unwrap(),
        );
        let block = block6(
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
                config: dynamic(&provider_config),
                ..Default::default()
            }
        );
        assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
        Subject::Oci { fake, front, block }
    }

    async fn lxd(v5: bool) -> Subject {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("unix.socket");
        // A manual clock keeps every finished operation listed, so every secret is seen.
        let fake = FakeLxd::start(fake_lxd::Config {
            clock: fake_lxd::ClockMode::Manual(fake_lxd::TEST_EPOCH),
            unix_socket: Some(socket.clone()),
            ..fake_lxd::Config::for_testing()
        })
        .await
        .expect("fake-lxd starts");
        let front = Front::new(provider::lxd::LxdProvider::default(), v5);
        let schemas: v6::get_provider_schema::Response =
            call!(&front, get_provider_schema, get_schema, Default::default());
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
                .expect("ephemeral schema"),
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
        let r: v6::configure_provider::Response = call!(
            &front,
            configure_provider,
            configure,
            v6::configure_provider::Request {
                terraform_version: "1.11.4".into(),
                config: dynamic(&provider_config),
                ..Default::default()
            }
        );
        assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
        Subject::Lxd {
            fake,
            front,
            block,
            _dir: dir,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Subject::Oci { .. } => TYPE,
            Subject::Lxd { .. } => "lxd_trust_token",
        }
    }

    /// The configuration of slot `slot`.
    fn config(&self, slot: usize, revoke: bool) -> Tv {
        match self {
            Subject::Oci { block, .. } => block.complete(&Tv::obj([
                ("user_id", Tv::s(USERS[slot])),
                ("description", Tv::s("property")),
            ])),
            Subject::Lxd { block, .. } => block.complete(&Tv::obj([
                ("name", Tv::s(LXD_NAMES[slot])),
                ("revoke_on_close", Tv::Bool(revoke)),
            ])),
        }
    }

    /// The id of the token an Open's result names (OCI: the token OCID; LXD: the operation).
    fn token_id(&self, result: &Tv) -> String {
        let key = match self {
            Subject::Oci { .. } => "id",
            Subject::Lxd { .. } => "operation_id",
        };
        result.get(key).as_str().expect("a token id").to_owned()
    }

    /// The tokens alive on the server: (owner, id). OCI: every token (owner: its user); LXD:
    /// the pending tokens (owner: empty).
    fn alive(&self) -> Vec<(String, String)> {
        match self {
            Subject::Oci { fake, .. } => alive(fake),
            Subject::Lxd { fake, .. } => fake
                .control()
                .pending_tokens()
                .into_iter()
                .map(|(id, _)| (String::new(), id))
                .collect(),
        }
    }

    fn secrets(&self) -> Vec<String> {
        match self {
            Subject::Oci { fake, .. } => oci_secrets(fake),
            Subject::Lxd { fake, .. } => lxd_secrets(fake),
        }
    }

    fn add_fault(&self, rule: Rule) {
        match self {
            Subject::Oci { fake, .. } => fake.control().add_fault(rule),
            Subject::Lxd { fake, .. } => fake.control().add_fault(rule),
        }
    }

    fn clear_faults(&self) {
        match self {
            Subject::Oci { fake, .. } => fake.control().clear_faults(),
            Subject::Lxd { fake, .. } => fake.control().clear_faults(),
        }
    }

    async fn idle(&self) {
        match self {
            Subject::Oci { fake, .. } => fake.control().idle().await,
            Subject::Lxd { fake, .. } => fake.control().idle().await,
        }
    }
}

/// One Open that succeeded: its private bytes, the token's id, and whether Close revokes it.
struct Handle {
    private: Vec<u8>,
    token_id: String,
    revoke: bool,
}

async fn run(subject: Subject, ops: Vec<Op>) {
    let type_name = subject.type_name();
    let lxd = matches!(subject, Subject::Lxd { .. });
    let mut open: Vec<Handle> = Vec::new();
    // Tokens a failed Close named, and tokens closed with revoke_on_close = false.
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut all_diags = String::new();
    // What failed Opens said: one whose create's answer was lost names a token it could not
    // delete.
    let mut failed_opens = String::new();
    // Every token an Open returned (fake-oci forgets a deleted token's secret).
    let mut issued: BTreeSet<String> = BTreeSet::new();
    for op in ops.into_iter().chain([Op::Close(usize::MAX)]) {
        match op {
            Op::Fault(method, path, fault, times) => {
                let action = match fault {
                    Fault::Status(status) => Action::Status {
                        status,
                        body: None,
                        headers: None,
                    },
                    Fault::ResetBefore => Action::Reset {
                        reset: ResetWhen::Before,
                    },
                    Fault::ResetAfter => Action::Reset {
                        reset: ResetWhen::After,
                    },
                };
                subject.add_fault(Rule {
                    method: method.into(),
                    path: path.into(),
                    times: Some(times),
                    action,
                });
            }
            Op::Open(slot, revoke) => {
                let revoke = revoke || !lxd;
                let r: v6::open_ephemeral_resource::Response = rpc!(
                    &subject,
                    open_ephemeral_resource,
                    v6::open_ephemeral_resource::Request {
                        type_name: type_name.into(),
                        config: dynamic(&subject.config(slot, revoke)),
                        client_capabilities: None,
                    }
                );
                all_diags.push_str(&texts(&r.diagnostics));
                if is_error(&r.diagnostics) {
                    failed_opens.push_str(&texts(&r.diagnostics));
                }
                if !is_error(&r.diagnostics) {
                    let result = decode(&r.result.expect("a result").msgpack);
                    if lxd {
                        assert_eq!(result.get("name").as_str(), Some(LXD_NAMES[slot]));
                    } else {
                        assert_eq!(result.get("state").as_str(), Some("ACTIVE"));
                        assert_eq!(result.get("user_id").as_str(), Some(USERS[slot]));
                    }
                    issued.insert(result.get("token").as_str().expect("a token").to_owned());
                    open.push(Handle {
                        private: r.private.expect("private data"),
                        token_id: subject.token_id(&result),
                        revoke,
                    });
                } else {
                    assert!(r.result.is_none() && r.private.is_none());
                }
            }
            Op::Renew(idx) => {
                if open.is_empty() {
                    continue;
                }
                let handle = &open[idx % open.len()];
                let r: v6::renew_ephemeral_resource::Response = rpc!(
                    &subject,
                    renew_ephemeral_resource,
                    v6::renew_ephemeral_resource::Request {
                        type_name: type_name.into(),
                        private: Some(handle.private.clone()),
                    }
                );
                assert!(r.renew_at.is_none());
                assert!(!is_error(&r.diagnostics));
            }
            Op::Close(idx) => {
                let closing: Vec<Handle> = if idx == usize::MAX {
                    subject.clear_faults();
                    std::mem::take(&mut open)
                } else if open.is_empty() {
                    continue;
                } else {
                    vec![open.remove(idx % open.len())]
                };
                for handle in closing {
                    let r: v6::close_ephemeral_resource::Response = rpc!(
                        &subject,
                        close_ephemeral_resource,
                        v6::close_ephemeral_resource::Request {
                            type_name: type_name.into(),
                            private: Some(handle.private),
                        }
                    );
                    let text = texts(&r.diagnostics);
                    all_diags.push_str(&text);
                    if is_error(&r.diagnostics) {
                        assert!(idx != usize::MAX, "a Close without faults failed: {text}");
                        assert!(text.contains(&handle.token_id), "{text}");
                        reported.insert(handle.token_id);
                    } else if !handle.revoke {
                        kept.insert(handle.token_id);
                    }
                }
            }
        }
        subject.idle().await;
        let alive = subject.alive();
        if !lxd {
            for user in USERS {
                let held = alive.iter().filter(|(u, _)| u == user).count();
                assert!(held <= 2, "{user} holds {held} tokens");
            }
        }
        for (_, token) in &alive {
            assert!(
                open.iter().any(|h| &h.token_id == token)
                    || reported.contains(token)
                    || kept.contains(token)
                    || failed_opens.contains(token.as_str()),
                "token {token} leaked: no open handle holds it, it was not kept, and no error named it; the diagnostics: {all_diags}"
            );
        }
        for secret in subject.secrets().iter().chain(&issued) {
            assert!(
                !all_diags.contains(secret.as_str()),
                "a secret reached a diagnostic"
            );
        }
    }
    assert!(open.is_empty());
    if lxd {
        // Kept tokens are still pending (nothing used them); revoked ones are not.
        let alive: BTreeSet<String> = subject.alive().into_iter().map(|(_, id)| id).collect();
        assert!(
            kept.is_subset(&alive),
            "a token kept by revoke_on_close = false is gone"
        );
    }
}

fn block_on(future: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6570_6836),
        ..ProptestConfig::default()
    })]
    #[test]
    fn ephemeral_auth_tokens_never_leak_over_protocol_6(ops in proptest::collection::vec(op(OCI_FAULTS), 1..8)) {
        block_on(async { run(Subject::oci(false).await, ops).await });
    }

}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6570_6838),
        ..ProptestConfig::default()
    })]
    #[test]
    fn ephemeral_trust_tokens_never_leak_over_protocol_6(ops in proptest::collection::vec(op(LXD_FAULTS), 2..14)) {
        block_on(async { run(Subject::lxd(false).await, ops).await });
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6570_6835),
        ..ProptestConfig::default()
    })]
    #[test]
    fn ephemeral_auth_tokens_never_leak_over_protocol_5(ops in proptest::collection::vec(op(OCI_FAULTS), 1..8)) {
        block_on(async { run(Subject::oci(true).await, ops).await });
    }

}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6570_6837),
        ..ProptestConfig::default()
    })]
    #[test]
    fn ephemeral_trust_tokens_never_leak_over_protocol_5(ops in proptest::collection::vec(op(LXD_FAULTS), 2..14)) {
        block_on(async { run(Subject::lxd(true).await, ops).await });
    }
}

/// The attribute a diagnostic names, as `name` or `projects[0]`.
fn attribute(diag: &v6::Diagnostic) -> String {
    use v6::attribute_path::step::Selector;
    let mut out = String::new();
    for step in diag.attribute.iter().flat_map(|a| &a.steps) {
        match &step.selector {
            Some(Selector::AttributeName(name)) if out.is_empty() => out.push_str(name),
            Some(Selector::AttributeName(name)) => out.push_str(&format!(".{name}")),
            Some(Selector::ElementKeyInt(i)) => out.push_str(&format!("[{i}]")),
            Some(Selector::ElementKeyString(k)) => out.push_str(&format!("[{k:?}]")),
            None => {}
        }
    }
    out
}

/// Bad input, through Validate and through Open (Terraform validates first; another client
/// may not): an error naming the attribute, and nothing made on the server. A configuration
/// not wholly known passes Validate (Terraform opens it once it is known), and Open refuses it
/// naming the unknown attribute, or defers when the client allows deferrals; neither makes
/// anything. Both providers, both protocols.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_names_the_attribute_and_makes_nothing() {
    let lxd_cases: Vec<(Tv, &str)> = vec![
        (Tv::obj([("name", Tv::s(""))]), "name"),
        (Tv::obj([("name", Tv::s("-joiner"))]), "name"),
        (Tv::obj([("name", Tv::s("a/b"))]), "name"),
        (
            Tv::obj([
                ("name", Tv::s("joiner")),
                ("projects", Tv::List(vec![Tv::s("default"), Tv::s("")])),
            ]),
            "projects[1]",
        ),
        (
            Tv::obj([("name", Tv::s("joiner")), ("token", Tv::s("chosen"))]),
            "token",
        ),
    ];
    let oci_cases: Vec<(Tv, &str)> = vec![
        (
            Tv::obj([("user_id", Tv::s("alice")), ("description", Tv::s("x"))]),
            "user_id",
        ),
        (
            Tv::obj([
                ("user_id", Tv::s("ocid1.tenancy.oc1..aaaaaaaaexample")),
                ("description", Tv::s("x")),
            ]),
            "user_id",
        ),
        (
            Tv::obj([
                ("user_id", Tv::s(TEST_USER)),
                ("description", Tv::s("x")),
                ("id", Tv::s("ocid1.credential.oc1..chosen")),
            ]),
            "id",
        ),
    ];
    let unknown_lxd = Tv::obj([("name", Tv::Unknown)]);
    let unknown_oci = Tv::obj([("user_id", Tv::Unknown), ("description", Tv::s("x"))]);
    for v5 in [false, true] {
        for subject in [Subject::lxd(v5).await, Subject::oci(v5).await] {
            let (block, cases, unknown, unknown_attr) = match &subject {
                Subject::Lxd { block, .. } => (block, &lxd_cases, &unknown_lxd, "name"),
                Subject::Oci { block, .. } => (block, &oci_cases, &unknown_oci, "user_id"),
            };
            let type_name = subject.type_name();
            for (config, attr) in cases.iter() {
                let config = block.complete(config);
                let context = format!("{type_name} (protocol 5: {v5}) {config:?}");
                let r: v6::validate_ephemeral_resource_config::Response = rpc!(
                    &subject,
                    validate_ephemeral_resource_config,
                    v6::validate_ephemeral_resource_config::Request {
                        type_name: type_name.into(),
                        config: dynamic(&config),
                    }
                );
                assert!(is_error(&r.diagnostics), "{context}: Validate passed");
                assert_eq!(attribute(&r.diagnostics[0]), *attr, "{context}");
                let r: v6::open_ephemeral_resource::Response = rpc!(
                    &subject,
                    open_ephemeral_resource,
                    v6::open_ephemeral_resource::Request {
                        type_name: type_name.into(),
                        config: dynamic(&config),
                        client_capabilities: None,
                    }
                );
                assert!(is_error(&r.diagnostics), "{context}: Open passed");
                assert_eq!(attribute(&r.diagnostics[0]), *attr, "{context}");
                assert!(r.private.is_none() && r.result.is_none(), "{context}");
            }
            let unknown = block.complete(unknown);
            let r: v6::validate_ephemeral_resource_config::Response = rpc!(
                &subject,
                validate_ephemeral_resource_config,
                v6::validate_ephemeral_resource_config::Request {
                    type_name: type_name.into(),
                    config: dynamic(&unknown),
                }
            );
            assert!(r.diagnostics.is_empty(), "{}", texts(&r.diagnostics));
            for deferral_allowed in [false, true] {
                let r: v6::open_ephemeral_resource::Response = rpc!(
                    &subject,
                    open_ephemeral_resource,
                    v6::open_ephemeral_resource::Request {
                        type_name: type_name.into(),
                        config: dynamic(&unknown),
                        client_capabilities: Some(v6::ClientCapabilities {
                            deferral_allowed,
                            ..Default::default()
                        }),
                    }
                );
                assert!(r.private.is_none());
                if deferral_allowed {
                    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
                    assert_eq!(
                        r.deferred.map(|d| d.reason),
                        Some(v6::deferred::Reason::ResourceConfigUnknown as i32)
                    );
                    let result = decode(&r.result.expect("a partial result").msgpack);
                    assert!(result.get(unknown_attr).has_unknown());
                } else {
                    assert!(is_error(&r.diagnostics));
                    assert_eq!(attribute(&r.diagnostics[0]), unknown_attr);
                }
            }
            subject.idle().await;
            let writes = match &subject {
                Subject::Lxd { fake, .. } => fake.control().requests(),
                Subject::Oci { fake, .. } => fake.control().requests(),
            }
            .into_iter()
            .filter(|r| r.method != "GET")
            .count();
            assert_eq!(writes, 0, "{type_name}: bad input reached the server");
            assert!(subject.alive().is_empty());
        }
    }
}

/// Opens the ephemeral LXD token of slot `slot` and returns its private data.
async fn lxd_open(subject: &Subject, slot: usize) -> Vec<u8> {
    let r: v6::open_ephemeral_resource::Response = rpc!(
        subject,
        open_ephemeral_resource,
        v6::open_ephemeral_resource::Request {
            type_name: "lxd_trust_token".into(),
            config: dynamic(&subject.config(slot, true)),
            client_capabilities: None,
        }
    );
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
    r.private.expect("private data")
}

async fn lxd_close(subject: &Subject, private: Vec<u8>) {
    let r: v6::close_ephemeral_resource::Response = rpc!(
        subject,
        close_ephemeral_resource,
        v6::close_ephemeral_resource::Request {
            type_name: "lxd_trust_token".into(),
            private: Some(private),
        }
    );
    assert!(!is_error(&r.diagnostics), "{}", texts(&r.diagnostics));
}

fn lxd_control(subject: &Subject) -> fake_lxd::control::Control {
    let Subject::Lxd { fake, .. } = subject else {
        panic!("an LXD subject")
    };
    fake.control()
}

/// A fault the random LXD runs leave out (it costs the client's request timeout of 30 s): a
/// create whose answer is lost after the token was made. The client does not send it again
/// but adopts the one new token of that name; Close revokes it and nothing is left pending.
#[tokio::test(flavor = "multi_thread")]
async fn lxd_create_whose_answer_is_lost_is_adopted_and_revoked() {
    let subject = Subject::lxd(false).await;
    let control = lxd_control(&subject);
    subject.add_fault(Rule {
        method: "POST".into(),
        path: "/1.0/certificates".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let private = lxd_open(&subject, 0).await;
    let creates = control
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        creates, 1,
        "a create that may have acted is never sent again"
    );
    assert_eq!(control.pending_tokens().len(), 1);
    lxd_close(&subject, private).await;
    subject.idle().await;
    assert!(control.pending_tokens().is_empty(), "nothing left pending");
}

/// The other fault left out of the random runs: a revocation that times out. It is sent
/// again, Close succeeds, and nothing is left pending.
#[tokio::test(flavor = "multi_thread")]
async fn lxd_revoke_that_times_out_is_sent_again() {
    let subject = Subject::lxd(false).await;
    let control = lxd_control(&subject);
    let private = lxd_open(&subject, 1).await;
    assert_eq!(control.pending_tokens().len(), 1);
    subject.add_fault(Rule {
        method: "DELETE".into(),
        path: "/1.0/operations/*".into(),
        times: Some(1),
        // Longer than the client's request timeout of 30 s.
        action: Action::Delay { delay_ms: 31_000 },
    });
    lxd_close(&subject, private).await;
    subject.idle().await;
    let revokes = control
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(revokes, 2, "the revocation that timed out was sent again");
    assert!(control.pending_tokens().is_empty(), "nothing left pending");
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

    // Every answer to a create is lost after OCI made the token: the failed Open finds the
    // token its create made and deletes it.
    let lost_answers = || fake_oci::faults::Rule {
        method: "POST".into(),
        path: "/20160918/users/**".into(),
        times: None,
        action: fake_oci::faults::Action::Reset {
            reset: fake_oci::faults::ResetWhen::After,
        },
    };
    control.add_fault(lost_answers());
    let r: v6::open_ephemeral_resource::Response =
        call!(&front, open_ephemeral_resource, open_req());
    let text = texts(&r.diagnostics);
    assert!(is_error(&r.diagnostics) && r.private.is_none(), "{text}");
    assert!(text.contains("was deleted"), "{text}");
    assert!(
        alive(&fake).is_empty(),
        "the lost create's token is deleted"
    );

    // When it cannot be deleted either, the error names it and its user.
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
    let r: v6::open_ephemeral_resource::Response =
        call!(&front, open_ephemeral_resource, open_req());
    let text = texts(&r.diagnostics);
    assert!(is_error(&r.diagnostics) && r.private.is_none(), "{text}");
    let left = alive(&fake);
    assert_eq!(left.len(), 1, "{text}");
    assert!(
        text.contains(left[0].1.as_str()) && text.contains(TEST_USER),
        "{text}"
    );

    // When the user's tokens could not be listed before the create, the token the create made
    // cannot be told from one another client made: nothing is deleted, and the warning says
    // what to look for.
    control.clear_faults();
    control.add_fault(lost_answers());
    control.add_fault(fake_oci::faults::Rule {
        method: "GET".into(),
        path: "/20160918/users/**".into(),
        times: Some(1),
        action: fake_oci::faults::Action::Status {
            status: 404,
            body: None,
            headers: None,
        },
    });
    let r: v6::open_ephemeral_resource::Response =
        call!(&front, open_ephemeral_resource, open_req());
    let text = texts(&r.diagnostics);
    assert!(is_error(&r.diagnostics) && r.private.is_none(), "{text}");
    assert_eq!(alive(&fake).len(), 2, "{text}");
    assert!(
        text.contains("oci iam auth-token list --user-id") && text.contains("close fails"),
        "{text}"
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

/// Found by `ephemeral_auth_tokens_never_leak_over_protocol_5` on a loaded machine: two creates
/// whose answers are lost, revocations refused twice, then an Open for the other user.
#[test]
fn oci_creates_whose_answers_are_lost_leave_no_token_unaccounted() {
    let ops = vec![
        Op::Close(2),
        Op::Fault("POST", "/20160918/users/**", Fault::ResetAfter, 2),
        Op::Fault("DELETE", "/20160918/users/**", Fault::Status(503), 2),
        Op::Close(0),
        Op::Open(1, true),
    ];
    for v5 in [true, false] {
        block_on(async { run(Subject::oci(v5).await, ops.clone()).await });
    }
}
