//! Any value a user (or a corrupted state) can hand the model: validation, planning and
//! reading never panic, and an out-of-range number or duration is an error on its attribute.
//!
//! Raise the case count locally with `PROPTEST_CASES=10000 cargo nextest run -p model --test hostile_input`.

use std::collections::BTreeMap;

use model::diag::{Diagnostic, Severity};
use model::oci_identity_auth_token as oci_token;
use model::schema::TypeSchema;
use model::value::Value;
use proptest::prelude::*;

/// Durations as a user might write them, well formed or not, short or absurdly long.
fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "([0-9]{0,25}(\\.[0-9]{0,5})?(ns|us|µs|ms|s|m|h|d|)){1,4}",
        "[0-9.hms -]{0,12}",
        Just("99999999999999999999999h".to_owned()),
        Just(format!("{}h", "9".repeat(400))),
        Just("2562047h47m16.854775807s".to_owned()),
        Just("2562047h47m17s".to_owned()),
    ]
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -1e3..1e6f64,
        Just(1e20),
        Just(f64::MAX),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(Value::Unknown),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
        duration_text().prop_map(Value::String),
        "ocid1\\.user\\.oc1\\.\\.[a-z0-9./]{0,8}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Set),
            proptest::collection::btree_map("[a-z_]{1,8}", inner.clone(), 0..4)
                .prop_map(Value::Map),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("create".to_owned()),
                    Just("delete".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(Value::Object),
        ]
    })
}

/// An object with every attribute and block of `schema`, each an arbitrary value, plus maybe
/// an attribute the schema does not have.
fn config_of(schema: TypeSchema) -> impl Strategy<Value = Value> {
    let mut names: Vec<&'static str> = schema.block.attributes.iter().map(|a| a.name).collect();
    names.extend(schema.block.blocks.iter().map(|b| b.type_name));
    let n = names.len();
    (
        proptest::collection::vec(value(), n),
        proptest::option::of(value()),
    )
        .prop_map(move |(values, extra)| {
            let mut map: BTreeMap<String, Value> = names
                .iter()
                .map(|name| (*name).to_owned())
                .zip(values)
                .collect();
            if let Some(extra) = extra {
                map.insert("not_in_the_schema".into(), extra);
            }
            Value::Object(map)
        })
}

/// The model's whole surface for a configuration and a prior state; only a panic fails.
fn exercise_oci_token(config: &Value, prior: &Value) {
    let _ = oci_token::validate(config);
    let _ = oci_token::plan(None, config);
    let _ = oci_token::plan(Some(prior), config);
    if let Ok(config) = oci_token::Config::from_value(config) {
        let _ = oci_token::Timeouts::create(config.timeouts.as_ref());
        let _ = oci_token::Timeouts::delete(config.timeouts.as_ref());
    }
    if let Ok(state) = oci_token::State::from_value(prior) {
        let _ = oci_token::Timeouts::delete(state.timeouts.as_ref());
        let _ = state.to_value();
    }
}

fn errors_on(diags: &[Diagnostic], path: &str) -> usize {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error && d.path.to_string() == path)
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn oci_auth_token_takes_any_value(
        config in config_of(oci_token::schema()),
        prior in config_of(oci_token::schema()),
    ) {
        exercise_oci_token(&config, &prior);
    }

    #[test]
    fn oci_auth_tokens_takes_any_value(config in config_of(model::oci_identity_auth_tokens::schema())) {
        let _ = model::oci_identity_auth_tokens::validate(&config);
        if let Ok(parsed) = model::oci_identity_auth_tokens::Config::from_value(&config) {
            let _ = model::oci_identity_auth_tokens::read(&config, &parsed, &[]);
        }
    }

    #[test]
    fn lxd_trust_token_takes_any_value(
        config in config_of(model::lxd_trust_token::schema()),
        prior in config_of(model::lxd_trust_token::schema()),
    ) {
        let _ = model::lxd_trust_token::validate(&config);
        let _ = model::lxd_trust_token::plan(None, &config);
        let _ = model::lxd_trust_token::plan(Some(&prior), &config);
        let _ = model::lxd_trust_token::Config::from_value(&config);
        if let Ok(state) = model::lxd_trust_token::State::from_value(&prior) {
            let _ = state.to_value();
        }
    }

    #[test]
    fn provider_configurations_take_any_value(
        oci in config_of(model::provider_oci::schema()),
        lxd in config_of(model::provider_lxd::schema()),
    ) {
        let _ = model::provider_oci::validate(&oci);
        let _ = model::provider_oci::retry_duration(&oci);
        let _ = model::plan::validate(&model::provider_lxd::schema().block, &lxd);
    }

    /// A timeout is accepted exactly when it parses, and then it fits Terraform's duration
    /// type; anything else is one error on `timeouts.<name>`.
    #[test]
    fn every_timeout_is_a_duration_or_an_error_on_its_attribute(text in duration_text()) {
        let mut config = match Value::null_block(&oci_token::schema().block) {
            Value::Object(map) => map,
            other => panic!("{other:?}"),
        };
        config.insert("description".into(), Value::string("d"));
        config.insert("user_id".into(), Value::string("ocid1.user.oc1..u"));
        config.insert(
            "timeouts".into(),
            Value::object([("create", Value::String(text.clone())), ("update", Value::Null), ("delete", Value::Null)]),
        );
        let diags = oci_token::validate(&Value::Object(config));
        match oci_token::parse_duration(&text) {
            Ok(duration) => {
                prop_assert!(duration <= oci_token::MAX_TIMEOUT);
                prop_assert!(diags.is_empty(), "{diags:?}");
            }
            Err(_) => {
                prop_assert_eq!(diags.len(), 1, "{:?}", diags);
                prop_assert_eq!(errors_on(&diags, "timeouts.create"), 1);
            }
        }
    }

    /// `retry_duration_seconds` is accepted from 0 to a day; anything else, NaN and infinities
    /// included, is one error on the attribute.
    #[test]
    fn retry_duration_is_in_range_or_an_error_on_its_attribute(seconds in number()) {
        let config = Value::object([("retry_duration_seconds", Value::Number(seconds))]);
        let diags = model::provider_oci::validate(&config);
        let in_range = (0.0..=model::provider_oci::MAX_RETRY_DURATION_SECONDS).contains(&seconds);
        prop_assert_eq!(errors_on(&diags, "retry_duration_seconds"), usize::from(!in_range), "{:?}", diags);
        let window = model::provider_oci::retry_duration(&config);
        prop_assert_eq!(window.is_ok(), in_range);
    }
}

#[test]
fn a_timeout_of_99999999999999999999999h_is_an_error_on_timeouts_create() {
    let mut config = match Value::null_block(&oci_token::schema().block) {
        Value::Object(map) => map,
        other => panic!("{other:?}"),
    };
    config.insert("description".into(), Value::string("d"));
    config.insert("user_id".into(), Value::string("ocid1.user.oc1..u"));
    config.insert(
        "timeouts".into(),
        Value::object([
            ("create", Value::string("99999999999999999999999h")),
            ("update", Value::Null),
            ("delete", Value::Null),
        ]),
    );
    let diags = oci_token::validate(&Value::Object(config));
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].path.to_string(), "timeouts.create");
    assert!(diags[0].detail.contains("at most 2562047h"), "{diags:?}");
}

#[test]
fn a_retry_duration_of_1e20_is_an_error_on_the_attribute() {
    let config = Value::object([("retry_duration_seconds", Value::Number(1e20))]);
    let diags = model::provider_oci::validate(&config);
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert_eq!(diags[0].path.to_string(), "retry_duration_seconds");
    assert!(diags[0].detail.contains("from 0 to 86400"), "{diags:?}");
}
