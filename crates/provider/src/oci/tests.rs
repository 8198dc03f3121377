//! The oci provider's configuration and ids through the protocol-6 service, in process:
//! numbers of any size, endpoints and ids that are not OCIDs end in diagnostics on their
//! attribute, never in a panic, and nothing is sent before they are checked.
//!
//! Raise the case count locally with `PROPTEST_CASES=1000 cargo nextest run -p provider --lib`.

use std::sync::Arc;

use model::value::Value;
use proptest::prelude::*;

use super::{OciProvider, create_may_have_acted};
use crate::codec;
use crate::core::Service;
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider as _;

const KEY: &str = include_str!("../../../../fixtures/oci/keys/test_user_key.pem");

/// A complete provider configuration signing with the test key, talking to `endpoint`; no
/// request is made by `configure`.
fn provider_config(retry_duration_seconds: Value, endpoint: &str) -> Value {
    let Value::Object(mut map) = Value::null_block(&model::provider_oci::schema().block) else {
        unreachable!("a block is an object")
    };
    for (name, value) in [
        ("tenancy_ocid", Value::string("ocid1.tenancy.oc1..t")),
        ("user_ocid", Value::string("ocid1.user.oc1..u")),
        ("private_key", Value::string(KEY)),
        ("endpoint", Value::string(endpoint)),
        ("retry_duration_seconds", retry_duration_seconds),
    ] {
        map.insert(name.to_owned(), value);
    }
    Value::Object(map)
}

fn dynamic(value: &Value) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: codec::encode(value),
        json: Vec::new(),
    })
}

fn service() -> Service<OciProvider> {
    Service::new(Arc::new(OciProvider::default()))
}

/// `(severity, attribute path, summary and detail)` of each diagnostic.
fn shown(diags: Vec<pb::Diagnostic>) -> Vec<(i32, String, String)> {
    use pb::attribute_path::step::Selector;
    diags
        .into_iter()
        .map(|d| {
            let path = d
                .attribute
                .map(|a| {
                    a.steps
                        .into_iter()
                        .map(|s| match s.selector {
                            Some(Selector::AttributeName(name)) => name,
                            other => format!("{other:?}"),
                        })
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .unwrap_or_default();
            (d.severity, path, format!("{}: {}", d.summary, d.detail))
        })
        .collect()
}

const ERROR: i32 = pb::diagnostic::Severity::Error as i32;
const WARNING: i32 = pb::diagnostic::Severity::Warning as i32;

async fn validate_provider(
    service: &Service<OciProvider>,
    config: &Value,
) -> Vec<(i32, String, String)> {
    let req = pb::validate_provider_config::Request {
        config: dynamic(config),
    };
    let reply = service
        .validate_provider_config(tonic::Request::new(req))
        .await;
    shown(reply.expect("an answer").into_inner().diagnostics)
}

async fn configure(service: &Service<OciProvider>, config: &Value) -> Vec<(i32, String, String)> {
    let req = pb::configure_provider::Request {
        terraform_version: "1.9.0".into(),
        config: dynamic(config),
        ..Default::default()
    };
    let reply = service.configure_provider(tonic::Request::new(req)).await;
    shown(reply.expect("an answer").into_inner().diagnostics)
}

async fn validate_resource(
    service: &Service<OciProvider>,
    type_name: &str,
    config: &Value,
) -> Vec<(i32, String, String)> {
    if type_name == model::oci_identity_auth_tokens::NAME {
        let req = pb::validate_data_resource_config::Request {
            type_name: type_name.into(),
            config: dynamic(config),
        };
        let reply = service
            .validate_data_resource_config(tonic::Request::new(req))
            .await;
        return shown(reply.expect("an answer").into_inner().diagnostics);
    }
    let req = pb::validate_resource_config::Request {
        type_name: type_name.into(),
        config: dynamic(config),
        ..Default::default()
    };
    let reply = service
        .validate_resource_config(tonic::Request::new(req))
        .await;
    shown(reply.expect("an answer").into_inner().diagnostics)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

#[tokio::test]
async fn a_retry_duration_of_1e20_is_an_error_on_the_attribute_not_a_panic() {
    let service = service();
    let config = provider_config(Value::Number(1e20), "http://127.0.0.1:9");
    for diags in [
        validate_provider(&service, &config).await,
        configure(&service, &config).await,
    ] {
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].0, ERROR);
        assert_eq!(diags[0].1, "retry_duration_seconds");
        assert!(diags[0].2.contains("from 0 to 86400"), "{diags:?}");
    }
}

#[tokio::test]
async fn a_zero_retry_window_keeps_the_request_timeout() {
    let config = provider_config(Value::Number(0.0), "http://127.0.0.1:9");
    let policy = OciProvider::retry_policy(&config).expect("0 is in range");
    assert_eq!(policy.max_elapsed, std::time::Duration::ZERO);
    assert_eq!(
        policy.request_timeout,
        oci_client::RetryPolicy::default().request_timeout
    );
    assert!(configure(&service(), &config).await.is_empty());
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_a_warning_on_endpoint() {
    for (endpoint, warned) in [
        ("http://127.0.0.1:9", false),
        ("http://[::1]:9", false),
        ("http://localhost:9", false),
        ("https://identity.example", false),
        ("http://identity.example", true),
        ("http://10.1.2.3:8080", true),
    ] {
        let diags = configure(&service(), &provider_config(Value::Null, endpoint)).await;
        if warned {
            assert_eq!(diags.len(), 1, "{endpoint}: {diags:?}");
            assert_eq!(diags[0].0, WARNING, "{endpoint}");
            assert_eq!(diags[0].1, "endpoint");
            assert!(diags[0].2.contains("unencrypted"), "{diags:?}");
        } else {
            assert!(diags.is_empty(), "{endpoint}: {diags:?}");
        }
    }
}

#[tokio::test]
async fn a_user_id_that_is_not_an_ocid_is_an_error_on_user_id() {
    let service = service();
    for type_name in [
        model::oci_identity_auth_token::NAME,
        model::oci_identity_auth_tokens::NAME,
    ] {
        let schema = if type_name == model::oci_identity_auth_token::NAME {
            model::oci_identity_auth_token::schema()
        } else {
            model::oci_identity_auth_tokens::schema()
        };
        let Value::Object(mut config) = Value::null_block(&schema.block) else {
            unreachable!("a block is an object")
        };
        if type_name == model::oci_identity_auth_token::NAME {
            config.insert("description".into(), Value::string("d"));
        }
        for (user_id, errors) in [
            ("..", 1),
            ("ocid1.user.oc1..a/../b", 1),
            ("u1", 1),
            ("ocid1.user.oc1..aaaa", 0),
        ] {
            config.insert("user_id".into(), Value::string(user_id));
            let diags =
                validate_resource(&service, type_name, &Value::Object(config.clone())).await;
            let on_user_id: Vec<_> = diags.iter().filter(|d| d.1 == "user_id").collect();
            assert_eq!(
                on_user_id.len(),
                errors,
                "{type_name} {user_id:?}: {diags:?}"
            );
            if errors > 0 {
                assert!(on_user_id[0].2.contains("not an OCID"), "{diags:?}");
            }
        }
    }
}

#[tokio::test]
async fn an_import_id_with_parts_that_are_not_ocids_is_refused() {
    let service = service();
    for (id, ok) in [
        (
            "users/ocid1.user.oc1..u/authTokens/ocid1.credential.oc1..t",
            true,
        ),
        ("users/../authTokens/ocid1.credential.oc1..t", false),
        ("users/ocid1.user.oc1..u/authTokens/..", false),
        ("users/ocid1.user.oc1..u/authTokens/%2E%2E", false),
        (
            "users/ocid1.user.oc1..u%2F..%2Fx/authTokens/ocid1.credential.oc1..t",
            false,
        ),
    ] {
        let req = pb::import_resource_state::Request {
            type_name: model::oci_identity_auth_token::NAME.into(),
            id: id.into(),
            ..Default::default()
        };
        let reply = service
            .import_resource_state(tonic::Request::new(req))
            .await
            .expect("an answer")
            .into_inner();
        let errors: Vec<_> = shown(reply.diagnostics)
            .into_iter()
            .filter(|d| d.0 == ERROR)
            .collect();
        assert_eq!(reply.imported_resources.is_empty(), !ok, "{id}: {errors:?}");
        assert_eq!(errors.is_empty(), ok, "{id}: {errors:?}");
        if !ok {
            assert!(errors[0].2.contains("Invalid import id"), "{errors:?}");
        }
    }
}

/// A state whose token id was tampered with cannot turn a destroy into another request: the
/// id is refused before anything is sent (nothing listens at the endpoint anyway), on `id`.
#[tokio::test]
async fn a_tampered_token_id_in_state_is_refused_on_destroy() {
    let service = service();
    let diags = configure(
        &service,
        &provider_config(Value::Null, "http://127.0.0.1:9"),
    )
    .await;
    assert!(diags.is_empty(), "{diags:?}");
    let Value::Object(mut state) =
        Value::null_block(&model::oci_identity_auth_token::schema().block)
    else {
        unreachable!("a block is an object")
    };
    state.insert("description".into(), Value::string("d"));
    state.insert("user_id".into(), Value::string("ocid1.user.oc1..u"));
    for tampered in [
        "..",
        "ocid1.credential.oc1..t/../../../users/x",
        "ocid1.credential.oc1..t?x",
    ] {
        state.insert("id".into(), Value::string(tampered));
        let prior = Value::Object(state.clone());
        let req = pb::apply_resource_change::Request {
            type_name: model::oci_identity_auth_token::NAME.into(),
            prior_state: dynamic(&prior),
            planned_state: dynamic(&Value::Null),
            config: dynamic(&Value::Null),
            ..Default::default()
        };
        let reply = service
            .apply_resource_change(tonic::Request::new(req))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.len(), 1, "{tampered}: {diags:?}");
        assert_eq!(diags[0].0, ERROR);
        assert_eq!(diags[0].1, "id");
        assert!(
            diags[0].2.contains("token_id") && diags[0].2.contains("not an OCID"),
            "{diags:?}"
        );
        let kept = reply.new_state.expect("the prior state is kept");
        assert_eq!(kept.msgpack, codec::encode(&prior));
    }
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        0.0..100_000.0f64,
        Just(1e20),
        Just(f64::MAX),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
    ]
}

fn attribute_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        number().prop_map(Value::Number),
        any::<bool>().prop_map(Value::Bool),
        any::<String>().prop_map(Value::String),
        "(https?|ftp)://[a-z0-9.:\\[\\]@/?#-]{0,20}".prop_map(Value::String),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any `retry_duration_seconds` is accepted in range and is one error on the attribute
    /// otherwise, at validation and at configuration alike.
    #[test]
    fn any_retry_duration_configures_or_is_an_error_on_the_attribute(seconds in number()) {
        runtime().block_on(async {
            let service = service();
            let config = provider_config(Value::Number(seconds), "http://127.0.0.1:9");
            let in_range = (0.0..=model::provider_oci::MAX_RETRY_DURATION_SECONDS).contains(&seconds);
            for diags in [validate_provider(&service, &config).await, configure(&service, &config).await] {
                let errors: Vec<_> = diags.iter().filter(|d| d.0 == ERROR).collect();
                if in_range {
                    prop_assert!(errors.is_empty(), "{seconds}: {diags:?}");
                } else {
                    prop_assert_eq!(errors.len(), 1, "{}: {:?}", seconds, diags);
                    prop_assert_eq!(errors[0].1.as_str(), "retry_duration_seconds");
                }
            }
            Ok(())
        })?;
    }

    /// Any value in any attribute of the provider configuration: validation and
    /// configuration answer diagnostics, never a panic.
    #[test]
    fn any_provider_configuration_is_answered(
        values in proptest::collection::vec(attribute_value(), 12),
    ) {
        runtime().block_on(async {
            let service = service();
            let mut config = provider_config(Value::Null, "http://127.0.0.1:9");
            if let Value::Object(map) = &mut config {
                let names: Vec<String> = map.keys().cloned().collect();
                for (name, value) in names.into_iter().zip(values) {
                    if !value.is_null() {
                        map.insert(name, value);
                    }
                }
            }
            let _ = validate_provider(&service, &config).await;
            let _ = configure(&service, &config).await;
        });
    }
}

/// A list of the user's tokens that answers 404 (a missing user, or one these credentials
/// cannot see) is an error, and the token stays in the state; a list without the token is
/// what removes it.
#[tokio::test]
async fn a_list_404_on_refresh_keeps_the_token_with_an_error() {
    use fake_oci::faults::{Action, Rule};
    let fake = fake_oci::FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    let id = fake.test_identity();
    let service = service();
    let Value::Object(mut config) = provider_config(Value::Null, &fake.endpoint()) else {
        unreachable!("a block is an object")
    };
    config.insert("tenancy_ocid".into(), Value::string(&id.tenancy));
    config.insert("user_ocid".into(), Value::string(&id.user));
    let diags = configure(&service, &Value::Object(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    let Value::Object(mut state) =
        Value::null_block(&model::oci_identity_auth_token::schema().block)
    else {
        unreachable!("a block is an object")
    };
    state.insert("description".into(), Value::string("d"));
    state.insert("user_id".into(), Value::string(&id.user));
    state.insert("id".into(), Value::string("ocid1.credential.oc1..t"));
    let current = Value::Object(state);
    let read = || pb::read_resource::Request {
        type_name: model::oci_identity_auth_token::NAME.into(),
        current_state: dynamic(&current),
        ..Default::default()
    };
    fake.control().add_fault(Rule {
        method: "GET".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: None,
        action: Action::Status {
            status: 404,
            body: None,
            headers: None,
        },
    });
    let reply = service
        .read_resource(tonic::Request::new(read()))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].0, ERROR);
    assert!(diags[0].2.contains("404"), "{diags:?}");
    assert_eq!(
        reply.new_state.expect("the state is kept").msgpack,
        codec::encode(&current)
    );
    fake.control().clear_faults();
    let reply = service
        .read_resource(tonic::Request::new(read()))
        .await
        .expect("an answer")
        .into_inner();
    assert!(reply.diagnostics.is_empty(), "{:?}", reply.diagnostics);
    assert_eq!(
        reply.new_state.expect("an answer").msgpack,
        codec::encode(&Value::Null),
        "a token the list does not show is gone"
    );
}

/// A service that hands out a page token it already sent makes the data source stop with an
/// error rather than loop or return a partial list.
#[tokio::test]
async fn the_data_source_stops_on_a_repeated_page_token() {
    use fake_oci::faults::{Action, Rule};
    let fake = fake_oci::FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    let id = fake.test_identity();
    let service = service();
    let Value::Object(mut config) = provider_config(Value::Null, &fake.endpoint()) else {
        unreachable!("a block is an object")
    };
    config.insert("tenancy_ocid".into(), Value::string(&id.tenancy));
    config.insert("user_ocid".into(), Value::string(&id.user));
    let diags = configure(&service, &Value::Object(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    // Every list answers one token and the same next page.
    fake.control().add_fault(Rule {
        method: "GET".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: None,
        action: Action::Status {
            status: 200,
            body: Some(serde_json::json!([{
                "id": "ocid1.credential.oc1..t", "userId": id.user, "description": "d",
                "lifecycleState": "ACTIVE", "timeCreated": "2026-01-01T00:00:00Z"
            }])),
            headers: Some([("opc-next-page".to_owned(), "page-1".to_owned())].into()),
        },
    });
    let Value::Object(mut data) =
        Value::null_block(&model::oci_identity_auth_tokens::schema().block)
    else {
        unreachable!("a block is an object")
    };
    data.insert("user_id".into(), Value::string(&id.user));
    let req = pb::read_data_source::Request {
        type_name: model::oci_identity_auth_tokens::NAME.into(),
        config: dynamic(&Value::Object(data)),
        ..Default::default()
    };
    let reply = service
        .read_data_source(tonic::Request::new(req))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].0, ERROR);
    assert!(diags[0].2.contains("\"page-1\" a second time"), "{diags:?}");
    let lists = fake
        .control()
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(lists, 2, "the first page, then the repeated token's page");
}

/// A user id in state that is not an OCID never reaches a URL: refresh, update and destroy
/// refuse it before any request (nothing listens at the endpoint anyway).
#[tokio::test]
async fn a_tampered_user_id_in_state_is_refused_before_any_request() {
    let service = service();
    let diags = configure(
        &service,
        &provider_config(Value::Null, "http://127.0.0.1:9"),
    )
    .await;
    assert!(diags.is_empty(), "{diags:?}");
    let schema = model::oci_identity_user::schema();
    let Value::Object(mut state) = Value::null_block(&schema.block) else {
        unreachable!("a block is an object")
    };
    state.insert(
        "compartment_id".into(),
        Value::string("ocid1.tenancy.oc1..t"),
    );
    state.insert("name".into(), Value::string("alice"));
    state.insert("description".into(), Value::string("d"));
    for tampered in [
        "..",
        "ocid1.user.oc1..a/../../b",
        "ocid1.user.oc1..a%2F..%2Fb",
    ] {
        state.insert("id".into(), Value::string(tampered));
        let prior = Value::Object(state.clone());
        let read = pb::read_resource::Request {
            type_name: model::oci_identity_user::NAME.into(),
            current_state: dynamic(&prior),
            ..Default::default()
        };
        let reply = service
            .read_resource(tonic::Request::new(read))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.len(), 1, "{tampered}: {diags:?}");
        assert_eq!(diags[0].0, ERROR);
        let destroy = pb::apply_resource_change::Request {
            type_name: model::oci_identity_user::NAME.into(),
            prior_state: dynamic(&prior),
            planned_state: dynamic(&Value::Null),
            config: dynamic(&Value::Null),
            ..Default::default()
        };
        let reply = service
            .apply_resource_change(tonic::Request::new(destroy))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.len(), 1, "{tampered}: {diags:?}");
        assert!(diags[0].2.contains("not an OCID"), "{diags:?}");
        assert_eq!(
            reply.new_state.expect("the prior state is kept").msgpack,
            codec::encode(&prior)
        );
    }
}

/// A create refused with a `409` (the live service's code for the limit is not documented)
/// names the user's tokens when the user holds two; any other `409` is reported as it is.
#[tokio::test]
async fn a_409_on_create_is_the_limit_only_when_the_user_is_full() {
    use fake_oci::faults::{Action, Rule};
    let fake = fake_oci::FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    let id = fake.test_identity();
    let provider = Arc::new(OciProvider::default());
    let service = Service::new(provider.clone());
    let Value::Object(mut config) = provider_config(Value::Null, &fake.endpoint()) else {
        unreachable!("a block is an object")
    };
    config.insert("tenancy_ocid".into(), Value::string(&id.tenancy));
    config.insert("user_ocid".into(), Value::string(&id.user));
    let diags = configure(&service, &Value::Object(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    let client = provider.client().unwrap();
    let first = client.create_auth_token(&id.user, "one").await.unwrap();

    let schema = model::oci_identity_auth_token::schema();
    let Value::Object(mut planned) = Value::null_block(&schema.block) else {
        unreachable!("a block is an object")
    };
    planned.insert("description".into(), Value::string("new"));
    planned.insert("user_id".into(), Value::string(&id.user));
    let create = || pb::apply_resource_change::Request {
        type_name: model::oci_identity_auth_token::NAME.into(),
        prior_state: dynamic(&Value::Null),
        planned_state: dynamic(&Value::Object(planned.clone())),
        config: dynamic(&Value::Object(planned.clone())),
        ..Default::default()
    };
    let conflict = || Rule {
        method: "POST".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: Some(1),
        action: Action::Status {
            status: 409,
            body: Some(serde_json::json!({"code": "Conflict", "message": "refused"})),
            headers: None,
        },
    };
    for (full, summary) in [
        (false, "Could not create the auth token"),
        (true, "Auth token limit reached"),
    ] {
        if full {
            client.create_auth_token(&id.user, "two").await.unwrap();
        }
        fake.control().add_fault(conflict());
        let reply = service
            .apply_resource_change(tonic::Request::new(create()))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].2.starts_with(summary), "{diags:?}");
        assert!(diags[0].2.contains("409 Conflict"), "{diags:?}");
        assert_eq!(diags[0].2.contains(&first.id), full, "{diags:?}");
    }
}

/// A create whose answer is lost after OCI made the token (the connection breaks after every
/// create, and retries with the same retry token get the same token) ends in an error with no
/// state, and the token OCI made is deleted: nothing Terraform does not know of is left. A
/// token of the same description made before the create is not touched; a 4xx refusal, which
/// makes nothing, leads to no listing.
#[tokio::test]
async fn a_create_whose_answer_is_lost_leaves_no_token_behind() {
    use fake_oci::faults::{Action, ResetWhen, Rule};
    let fake = fake_oci::FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    let id = fake.test_identity();
    let provider = Arc::new(OciProvider::default());
    let service = Service::new(provider.clone());
    let Value::Object(mut config) = provider_config(Value::Number(1.0), &fake.endpoint()) else {
        unreachable!("a block is an object")
    };
    config.insert("tenancy_ocid".into(), Value::string(&id.tenancy));
    config.insert("user_ocid".into(), Value::string(&id.user));
    let diags = configure(&service, &Value::Object(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    let client = provider.client().unwrap();
    let earlier = client.create_auth_token(&id.user, "lost").await.unwrap();

    let schema = model::oci_identity_auth_token::schema();
    let Value::Object(mut planned) = Value::null_block(&schema.block) else {
        unreachable!("a block is an object")
    };
    planned.insert("description".into(), Value::string("lost"));
    planned.insert("user_id".into(), Value::string(&id.user));
    let create = || pb::apply_resource_change::Request {
        type_name: model::oci_identity_auth_token::NAME.into(),
        prior_state: dynamic(&Value::Null),
        planned_state: dynamic(&Value::Object(planned.clone())),
        config: dynamic(&Value::Object(planned.clone())),
        ..Default::default()
    };
    let tokens = || async {
        let listed = client.list_auth_tokens(&id.user).await.unwrap();
        listed
            .into_iter()
            .filter(|t| t.lifecycle_state != "DELETED" && t.lifecycle_state != "DELETING")
            .map(|t| t.id)
            .collect::<Vec<_>>()
    };
    fake.control().add_fault(Rule {
        method: "POST".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: None,
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let reply = service
        .apply_resource_change(tonic::Request::new(create()))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    let no_state = reply
        .new_state
        .as_ref()
        .is_none_or(|d| d.msgpack == codec::encode(&Value::Null));
    assert!(no_state, "{diags:?}");
    assert_eq!(diags[0].0, ERROR, "{diags:?}");
    assert!(
        diags[0].2.starts_with("Could not create the auth token"),
        "{diags:?}"
    );
    assert_eq!(diags[1].0, WARNING, "{diags:?}");
    assert!(diags[1].2.contains("was deleted"), "{diags:?}");
    assert_eq!(
        tokens().await,
        std::slice::from_ref(&earlier.id),
        "{diags:?}"
    );

    // A refusal makes nothing: no listing after it, and no second diagnostic.
    fake.control().clear_faults();
    fake.control().add_fault(Rule {
        method: "POST".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: None,
        action: Action::Status {
            status: 400,
            body: Some(serde_json::json!({"code": "InvalidParameter", "message": "refused"})),
            headers: None,
        },
    });
    let gets = || {
        fake.control()
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count()
    };
    let gets_before = gets();
    let reply = service
        .apply_resource_change(tonic::Request::new(create()))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(gets() - gets_before, 1, "only the list before the create");
    assert_eq!(tokens().await, [earlier.id], "{diags:?}");
}

#[test]
fn a_create_may_have_acted_when_its_answer_was_lost_or_the_service_failed() {
    let service = |status: u16| oci_client::Error::Service {
        status,
        code: "Code".into(),
        message: String::new(),
        request_id: String::new(),
    };
    let timeout = || oci_client::Error::Timeout {
        endpoint: "https://identity".into(),
    };
    assert!(create_may_have_acted(&timeout()));
    assert!(create_may_have_acted(&oci_client::Error::Connect {
        endpoint: "https://identity".into(),
        message: "reset".into(),
    }));
    assert!(create_may_have_acted(&service(500)));
    assert!(create_may_have_acted(&service(503)));
    assert!(
        !create_may_have_acted(&service(409)),
        "a refusal made nothing"
    );
    assert!(!create_may_have_acted(&service(400)));
    assert!(create_may_have_acted(
        &oci_client::Error::RetriesExhausted {
            attempts: 3,
            elapsed: std::time::Duration::from_secs(1),
            last: Box::new(service(502)),
        }
    ));
    assert!(!create_may_have_acted(
        &oci_client::Error::RetriesExhausted {
            attempts: 3,
            elapsed: std::time::Duration::from_secs(1),
            last: Box::new(service(429)),
        }
    ));
}

/// An ephemeral Open refused with 409 is checked against the limit as a managed create is: it
/// names the user's tokens when the user holds two, and is the service's refusal otherwise;
/// neither leaves a token behind.
#[tokio::test]
async fn an_ephemeral_open_at_the_limit_names_the_users_tokens() {
    use fake_oci::faults::{Action, Rule};
    let fake = fake_oci::FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    let id = fake.test_identity();
    let provider = Arc::new(OciProvider::default());
    let service = Service::new(provider.clone());
    let Value::Object(mut config) = provider_config(Value::Null, &fake.endpoint()) else {
        unreachable!("a block is an object")
    };
    config.insert("tenancy_ocid".into(), Value::string(&id.tenancy));
    config.insert("user_ocid".into(), Value::string(&id.user));
    let diags = configure(&service, &Value::Object(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    let client = provider.client().unwrap();
    let first = client.create_auth_token(&id.user, "one").await.unwrap();

    let schema = model::ephemeral_oci_identity_auth_token::schema();
    let Value::Object(mut open) = Value::null_block(&schema.block) else {
        unreachable!("a block is an object")
    };
    open.insert("description".into(), Value::string("new"));
    open.insert("user_id".into(), Value::string(&id.user));
    for (full, summary) in [
        (false, "Could not create the auth token: OCI answered 409"),
        (true, "Auth token limit reached"),
    ] {
        if full {
            client.create_auth_token(&id.user, "two").await.unwrap();
        }
        fake.control().add_fault(Rule {
            method: "POST".into(),
            path: "/20160918/users/*/authTokens".into(),
            times: Some(1),
            action: Action::Status {
                status: 409,
                body: Some(serde_json::json!({"code": "Conflict", "message": "refused"})),
                headers: None,
            },
        });
        let reply = service
            .open_ephemeral_resource(tonic::Request::new(pb::open_ephemeral_resource::Request {
                type_name: model::ephemeral_oci_identity_auth_token::NAME.into(),
                config: dynamic(&Value::Object(open.clone())),
                client_capabilities: None,
            }))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].2.starts_with(summary), "{diags:?}");
        assert_eq!(diags[0].2.contains(&first.id), full, "{diags:?}");
        assert!(reply.result.is_none() && reply.private.is_none());
        let held = client.list_auth_tokens(&id.user).await.unwrap();
        assert_eq!(held.len(), if full { 2 } else { 1 }, "{held:?}");
    }
}

/// A fake OCI (system clock) and a provider configured against it as its test user, with the
/// provider attributes `extra` set; returns the provider too, for its client.
async fn configured_against(
    extra: &[(&str, Value)],
) -> (fake_oci::FakeOci, Arc<OciProvider>, Service<OciProvider>) {
    let fake = fake_oci::FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    })
    .await
    .unwrap();
    let id = fake.test_identity();
    let provider = Arc::new(OciProvider::default());
    let service = Service::new(provider.clone());
    let Value::Object(mut config) = provider_config(Value::Null, &fake.endpoint()) else {
        unreachable!("a block is an object")
    };
    config.insert("tenancy_ocid".into(), Value::string(&id.tenancy));
    config.insert("user_ocid".into(), Value::string(&id.user));
    for (name, value) in extra {
        config.insert((*name).to_owned(), value.clone());
    }
    let diags = configure(&service, &Value::Object(config)).await;
    assert!(diags.is_empty(), "{diags:?}");
    (fake, provider, service)
}

/// An `oci_identity_auth_token` state (or configuration) of `user_id` with description `d`.
fn token_state(user_id: &str, id: Option<&str>) -> Value {
    let Value::Object(mut state) =
        Value::null_block(&model::oci_identity_auth_token::schema().block)
    else {
        unreachable!("a block is an object")
    };
    state.insert("description".into(), Value::string("d"));
    state.insert("user_id".into(), Value::string(user_id));
    if let Some(id) = id {
        state.insert("id".into(), Value::string(id));
    }
    Value::Object(state)
}

/// A provider whose configuration failed says so on every call that needs OCI, rather than
/// answering as if nothing were wrong.
#[tokio::test]
async fn an_unconfigured_provider_is_an_error_on_every_call() {
    let service = service();
    let state = token_state("ocid1.user.oc1..u", Some("ocid1.credential.oc1..t"));
    let read = service
        .read_resource(tonic::Request::new(pb::read_resource::Request {
            type_name: model::oci_identity_auth_token::NAME.into(),
            current_state: dynamic(&state),
            ..Default::default()
        }))
        .await
        .expect("an answer")
        .into_inner();
    let create = service
        .apply_resource_change(tonic::Request::new(pb::apply_resource_change::Request {
            type_name: model::oci_identity_auth_token::NAME.into(),
            prior_state: dynamic(&Value::Null),
            planned_state: dynamic(&token_state("ocid1.user.oc1..u", None)),
            config: dynamic(&token_state("ocid1.user.oc1..u", None)),
            ..Default::default()
        }))
        .await
        .expect("an answer")
        .into_inner();
    let Value::Object(mut data) =
        Value::null_block(&model::oci_identity_auth_tokens::schema().block)
    else {
        unreachable!("a block is an object")
    };
    data.insert("user_id".into(), Value::string("ocid1.user.oc1..u"));
    let list = service
        .read_data_source(tonic::Request::new(pb::read_data_source::Request {
            type_name: model::oci_identity_auth_tokens::NAME.into(),
            config: dynamic(&Value::Object(data)),
            ..Default::default()
        }))
        .await
        .expect("an answer")
        .into_inner();
    for (call, diags) in [
        ("read", read.diagnostics),
        ("create", create.diagnostics),
        ("data source", list.diagnostics),
    ] {
        let diags = shown(diags);
        assert_eq!(diags.len(), 1, "{call}: {diags:?}");
        assert_eq!(diags[0].0, ERROR, "{call}");
        assert!(
            diags[0].2.starts_with("Provider not configured"),
            "{call}: {diags:?}"
        );
    }
}

/// A token state whose user id was tampered with is refused before any request, with the
/// error on `user_id` (nothing listens at the endpoint anyway); the state is kept.
#[tokio::test]
async fn a_tampered_user_id_in_token_state_is_an_error_on_user_id() {
    let service = service();
    let diags = configure(
        &service,
        &provider_config(Value::Null, "http://127.0.0.1:9"),
    )
    .await;
    assert!(diags.is_empty(), "{diags:?}");
    for tampered in ["..", "ocid1.user.oc1..u/../../x"] {
        let state = token_state(tampered, Some("ocid1.credential.oc1..t"));
        let reply = service
            .read_resource(tonic::Request::new(pb::read_resource::Request {
                type_name: model::oci_identity_auth_token::NAME.into(),
                current_state: dynamic(&state),
                ..Default::default()
            }))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.len(), 1, "{tampered}: {diags:?}");
        assert_eq!(diags[0].0, ERROR);
        assert_eq!(diags[0].1, "user_id", "{diags:?}");
        assert!(diags[0].2.contains("not an OCID"), "{diags:?}");
        assert_eq!(
            reply.new_state.expect("the state is kept").msgpack,
            codec::encode(&state)
        );
    }
}

/// With `disable_auto_retries = true`, a request the service fails is reported at once, not
/// tried again; by default (or `false`) the provider retries.
#[tokio::test]
async fn disabled_auto_retries_report_the_first_failure() {
    use fake_oci::faults::{Action, Rule};
    let (fake, _provider, service) =
        configured_against(&[("disable_auto_retries", Value::Bool(true))]).await;
    let id = fake.test_identity();
    fake.control().add_fault(Rule {
        method: "GET".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: Some(1),
        action: Action::Status {
            status: 503,
            body: Some(serde_json::json!({"code": "ServiceUnavailable", "message": "busy"})),
            headers: None,
        },
    });
    let Value::Object(mut data) =
        Value::null_block(&model::oci_identity_auth_tokens::schema().block)
    else {
        unreachable!("a block is an object")
    };
    data.insert("user_id".into(), Value::string(&id.user));
    let reply = service
        .read_data_source(tonic::Request::new(pb::read_data_source::Request {
            type_name: model::oci_identity_auth_tokens::NAME.into(),
            config: dynamic(&Value::Object(data)),
            ..Default::default()
        }))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].0, ERROR);
    assert!(diags[0].2.contains("503"), "{diags:?}");
    let lists = fake
        .control()
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(lists, 1, "no retry");

    for (setting, disabled) in [
        (Value::Null, false),
        (Value::Bool(false), false),
        (Value::Bool(true), true),
    ] {
        let Value::Object(mut config) = provider_config(Value::Null, "http://127.0.0.1:9") else {
            unreachable!("a block is an object")
        };
        config.insert("disable_auto_retries".into(), setting.clone());
        let policy = OciProvider::retry_policy(&Value::Object(config)).expect("a policy");
        assert_eq!(policy.disabled, disabled, "{setting:?}");
    }
}

/// An `oci_identity_user` configuration is checked: a compartment that is not an OCID is an
/// error on `compartment_id`.
#[tokio::test]
async fn an_identity_user_with_a_bad_compartment_is_an_error_on_compartment_id() {
    let service = service();
    let Value::Object(mut config) = Value::null_block(&model::oci_identity_user::schema().block)
    else {
        unreachable!("a block is an object")
    };
    config.insert("name".into(), Value::string("alice"));
    config.insert("description".into(), Value::string("d"));
    for (compartment, errors) in [("not-an-ocid", 1), ("ocid1.tenancy.oc1..t", 0)] {
        config.insert("compartment_id".into(), Value::string(compartment));
        let diags = validate_resource(
            &service,
            model::oci_identity_user::NAME,
            &Value::Object(config.clone()),
        )
        .await;
        assert_eq!(diags.len(), errors, "{compartment}: {diags:?}");
        if errors > 0 {
            assert_eq!(diags[0].0, ERROR);
            assert_eq!(diags[0].1, "compartment_id", "{diags:?}");
        }
    }
}

/// An `auth` the provider does not support is an error on `auth`.
#[tokio::test]
async fn an_unsupported_auth_is_an_error_on_auth() {
    let Value::Object(mut config) = provider_config(Value::Null, "http://127.0.0.1:9") else {
        unreachable!("a block is an object")
    };
    config.insert("auth".into(), Value::string("InstancePrincipal"));
    let diags = configure(&service(), &Value::Object(config)).await;
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].0, ERROR);
    assert_eq!(diags[0].1, "auth", "{diags:?}");
    assert!(diags[0].2.contains("InstancePrincipal"), "{diags:?}");
}

/// A plan that creates an auth token for a user who already holds two (OCI's limit) says so
/// on `user_id`, naming both; a user with a free slot plans without a word.
#[tokio::test]
async fn a_plan_past_the_token_limit_names_the_users_tokens() {
    let (fake, provider, service) = configured_against(&[]).await;
    let id = fake.test_identity();
    let client = provider.client().unwrap();
    let first = client.create_auth_token(&id.user, "one").await.unwrap();
    let config = token_state(&id.user, None);
    let plan = || pb::plan_resource_change::Request {
        type_name: model::oci_identity_auth_token::NAME.into(),
        prior_state: dynamic(&Value::Null),
        proposed_new_state: dynamic(&config),
        config: dynamic(&config),
        ..Default::default()
    };
    let reply = service
        .plan_resource_change(tonic::Request::new(plan()))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert!(diags.is_empty(), "one slot is free: {diags:?}");

    let second = client.create_auth_token(&id.user, "two").await.unwrap();
    let reply = service
        .plan_resource_change(tonic::Request::new(plan()))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].1, "user_id", "{diags:?}");
    assert!(diags[0].2.starts_with("Auth token limit"), "{diags:?}");
    assert!(
        diags[0].2.contains(&first.id) && diags[0].2.contains(&second.id),
        "{diags:?}"
    );
}

/// A user is imported by its OCID; an id that is not a user's OCID is refused.
#[tokio::test]
async fn a_user_is_imported_by_its_ocid() {
    let service = service();
    for (id, ok) in [("ocid1.user.oc1..aaaa", true), ("alice", false)] {
        let reply = service
            .import_resource_state(tonic::Request::new(pb::import_resource_state::Request {
                type_name: model::oci_identity_user::NAME.into(),
                id: id.into(),
                ..Default::default()
            }))
            .await
            .expect("an answer")
            .into_inner();
        let diags = shown(reply.diagnostics);
        assert_eq!(diags.is_empty(), ok, "{id}: {diags:?}");
        assert_eq!(reply.imported_resources.len(), usize::from(ok), "{id}");
        if ok {
            let state = codec::decode_block(
                &model::oci_identity_user::schema().block,
                &reply.imported_resources[0]
                    .state
                    .as_ref()
                    .expect("a state")
                    .msgpack,
            )
            .expect("a state the schema reads");
            assert_eq!(state.get("id").as_str(), Some(id));
        } else {
            assert!(diags[0].2.contains("Invalid import id"), "{diags:?}");
        }
    }
}

/// An ephemeral Open of a token OCI makes in state CREATING waits until it is ACTIVE, so
/// that the token it hands out can be used at once.
#[tokio::test]
async fn an_ephemeral_open_waits_until_the_token_is_active() {
    let (fake, _provider, service) = configured_against(&[]).await;
    let id = fake.test_identity();
    // A new token turns ACTIVE on the first list that shows it.
    fake.control()
        .set_lifecycle(fake_oci::Delay::Reads(1), fake_oci::Delay::Immediate);
    let schema = model::ephemeral_oci_identity_auth_token::schema();
    let Value::Object(mut open) = Value::null_block(&schema.block) else {
        unreachable!("a block is an object")
    };
    open.insert("description".into(), Value::string("session"));
    open.insert("user_id".into(), Value::string(&id.user));
    let reply = service
        .open_ephemeral_resource(tonic::Request::new(pb::open_ephemeral_resource::Request {
            type_name: model::ephemeral_oci_identity_auth_token::NAME.into(),
            config: dynamic(&Value::Object(open)),
            client_capabilities: None,
        }))
        .await
        .expect("an answer")
        .into_inner();
    let diags = shown(reply.diagnostics);
    assert!(diags.is_empty(), "{diags:?}");
    let result = codec::decode_block(
        &schema.block,
        &reply.result.as_ref().expect("a result").msgpack,
    )
    .expect("a result the schema reads");
    assert_eq!(result.get("state").as_str(), Some("ACTIVE"));
}
