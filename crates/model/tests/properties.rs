//! Terraform's planning rules, checked on random configurations and server events.
//!
//! Raise the case count locally with `PROPTEST_CASES=10000 cargo test -p model --test properties`.

use model::lxd_trust_token as lxd;
use model::oci_identity_auth_token as oci;
use model::plan::Action;
use model::schema::Presence;
use model::value::Value;
use proptest::prelude::*;
use time::OffsetDateTime;

fn opt_string() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z]{1,6}")
}

/// A configuration as Terraform sends it: every attribute present, unset ones null.
fn lxd_config() -> impl Strategy<Value = Value> {
    (
        "[a-z][a-z0-9-]{0,8}",
        proptest::option::of(proptest::collection::vec("[a-z]{1,5}", 0..3)),
        opt_string(),
        proptest::option::of(prop_oneof![Just("once"), Just("always")]),
    )
        .prop_map(|(name, projects, remote, trigger)| {
            Value::object([
                ("name", Value::string(name)),
                (
                    "projects",
                    projects.map_or(Value::Null, |p| {
                        Value::List(p.into_iter().map(Value::String).collect())
                    }),
                ),
                ("remote", remote.map_or(Value::Null, Value::String)),
                ("trigger", trigger.map_or(Value::Null, Value::string)),
                ("token", Value::Null),
                ("expires_at", Value::Null),
                ("operation_id", Value::Null),
                ("id", Value::Null),
                ("status", Value::Null),
                ("consumed_by", Value::Null),
                ("remove_consumer_on_destroy", Value::Null),
            ])
        })
}

fn server_token(name: &str, seed: u32, expires: Option<i64>) -> lxd::ServerToken {
    lxd::ServerToken {
        operation_id: format!("00000000-0000-4000-8000-{seed:012x}"),
        name: name.to_owned(),
        token: format!("dG9rZW4t{seed:08x}"),
        expires_at: expires
            .map(|s| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_800_000_000 + s)),
    }
}

/// Apply as the provider does it: the planned config, then the server's answer.
fn lxd_apply(planned: &Value, seed: u32, expires: Option<i64>) -> Value {
    let config = lxd::Config::from_value(planned).expect("a planned config is readable");
    lxd::after_create(config.clone(), &server_token(&config.name, seed, expires)).to_value()
}

/// Terraform's rule: a non-computed attribute is planned exactly as configured.
fn assert_plan_honours_config(schema: &model::schema::TypeSchema, config: &Value, planned: &Value) {
    for attr in &schema.block.attributes {
        let configured = config.get(attr.name);
        match attr.presence {
            Presence::Required | Presence::Optional => {
                assert_eq!(planned.get(attr.name), configured, "{}", attr.name)
            }
            Presence::OptionalComputed if !configured.is_null() => {
                assert_eq!(planned.get(attr.name), configured, "{}", attr.name)
            }
            _ => {}
        }
    }
}

/// A known planned value must come out of apply unchanged.
fn assert_apply_matches_plan(planned: &Value, applied: &Value) {
    let (Value::Object(planned), Value::Object(applied)) = (planned, applied) else {
        panic!("not objects");
    };
    assert_eq!(
        planned.keys().collect::<Vec<_>>(),
        applied.keys().collect::<Vec<_>>()
    );
    for (name, value) in planned {
        assert!(
            !applied[name].contains_unknown(),
            "{name} unknown after apply"
        );
        if !value.contains_unknown() {
            assert_eq!(
                &applied[name], value,
                "{name} changed between plan and apply"
            );
        }
    }
}

fn with_defaults(config: &Value) -> Value {
    lxd::plan(None, config).planned
}

proptest! {
    #[test]
    fn lxd_after_apply_the_next_plan_is_empty(config in lxd_config(), seed in any::<u32>(), expires in proptest::option::of(0i64..10_000)) {
        let plan = lxd::plan(None, &config);
        prop_assert_eq!(plan.action, Action::Create);
        assert_plan_honours_config(&lxd::schema(), &config, &plan.planned);
        let state = lxd_apply(&plan.planned, seed, expires);
        assert_apply_matches_plan(&plan.planned, &state);
        let next = lxd::plan(Some(&state), &config);
        prop_assert_eq!(next.action, Action::NoOp);
        prop_assert_eq!(next.planned, state);
    }

    #[test]
    fn lxd_replacement_exactly_when_an_input_changes(before in lxd_config(), after in lxd_config(), seed in any::<u32>()) {
        let state = lxd_apply(&lxd::plan(None, &before).planned, seed, None);
        let plan = lxd::plan(Some(&state), &after);
        assert_plan_honours_config(&lxd::schema(), &after, &plan.planned);
        let inputs_differ = ["name", "projects", "remote", "trigger"]
            .iter()
            .any(|k| with_defaults(&before).get(k) != with_defaults(&after).get(k));
        prop_assert_eq!(plan.action == Action::Replace, inputs_differ);
        prop_assert_eq!(plan.action == Action::NoOp, !inputs_differ);
    }

    #[test]
    fn lxd_refresh_never_invents_a_token(config in lxd_config(), seed in any::<u32>(), other in any::<u32>(),
                                         present in any::<bool>(), expires in proptest::option::of(0i64..100), now in 0i64..200) {
        let prior = lxd::State::from_value(&lxd_apply(&lxd::plan(None, &config).planned, seed, expires)).unwrap();
        let found = server_token(&prior.config.name, other, expires);
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(1_800_000_000 + now);
        let seen = lxd::Observation {
            operation: if present { lxd::Operation::Running(found.clone()) } else { lxd::Operation::Gone },
            now,
            named: Default::default(),
            rivals: Default::default(),
        };
        let (state, _) = lxd::refresh(&prior, Some(&lxd::Baseline::default()), &seen);
        prop_assert!(state.token == prior.token || (present && state.token == found.token));
        prop_assert_eq!(&state.operation_id, &prior.operation_id);
        // Usable exactly when it is listed and its expiry is ahead.
        let usable = present && found.expires_at.is_none_or(|at| at > now);
        prop_assert_eq!(state.status == lxd::Status::Pending, usable);
        // `always` replaces exactly the tokens that cannot be used.
        let next = lxd::plan(Some(&state.to_value()), &config);
        if prior.config.trigger == lxd::Trigger::Always {
            prop_assert_eq!(next.action == Action::Replace, !usable);
        } else {
            prop_assert_eq!(next.action, Action::NoOp);
        }
    }
}

fn oci_config(description: &str, user: &str) -> Value {
    let mut value = Value::null_block(&oci::schema().block);
    if let Value::Object(map) = &mut value {
        map.insert("description".into(), Value::string(description));
        map.insert("user_id".into(), Value::string(user));
    }
    value
}

fn oci_created(config: &Value, seed: u32) -> oci::ServerAuthToken {
    oci::ServerAuthToken {
        id: format!("ocid1.credential.oc1..{seed:08x}"),
        user_id: config.get("user_id").as_str().unwrap().to_owned(),
        description: config.get("description").as_str().unwrap().to_owned(),
        token: Some(format!("secret-{seed:08x}")),
        lifecycle_state: "ACTIVE".into(),
        inactive_status: None,
        time_created: OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(i64::from(seed)),
        time_expires: None,
    }
}

proptest! {
    #[test]
    fn oci_description_changes_update_in_place_and_keep_the_secret(
        d1 in ".{0,12}", d2 in ".{0,12}", user in "u[0-9]{1,3}", seed in any::<u32>(), steps in 1usize..5
    ) {
        let config = oci_config(&d1, &user);
        let plan = oci::plan(None, &config);
        assert_plan_honours_config(&oci::schema(), &config, &plan.planned);
        let created = oci_created(&config, seed);
        let mut state = oci::after_create(&oci::Config::from_value(&config).unwrap(), &created);
        assert_apply_matches_plan(&plan.planned, &state.to_value());
        prop_assert_eq!(oci::plan(Some(&state.to_value()), &config).action, Action::NoOp);
        for step in 0..steps {
            let description = if step % 2 == 0 { &d2 } else { &d1 };
            let next = oci_config(description, &user);
            let plan = oci::plan(Some(&state.to_value()), &next);
            prop_assert_ne!(plan.action, Action::Replace);
            prop_assert_eq!(plan.action == Action::Update, description != &state.description);
            state = oci::after_update(&state, &oci::Config::from_value(&next).unwrap());
            assert_apply_matches_plan(&plan.planned, &state.to_value());
            // A refresh from the list (no secret) keeps the secret.
            let mut listed = created.clone();
            listed.token = None;
            listed.description = description.clone();
            state = oci::refresh(&state, Some(&listed)).unwrap();
            prop_assert_eq!(state.token.as_deref(), created.token.as_deref());
            prop_assert_eq!(oci::plan(Some(&state.to_value()), &next).action, Action::NoOp);
        }
    }

    #[test]
    fn oci_user_change_replaces(d in ".{0,8}", u1 in "u[0-9]{1,3}", u2 in "u[0-9]{1,3}", seed in any::<u32>()) {
        let config = oci_config(&d, &u1);
        let state = oci::after_create(&oci::Config::from_value(&config).unwrap(), &oci_created(&config, seed));
        let plan = oci::plan(Some(&state.to_value()), &oci_config(&d, &u2));
        prop_assert_eq!(plan.action == Action::Replace, u1 != u2);
    }

    #[test]
    fn oci_refresh_never_invents_a_token(seed in any::<u32>(), listed_secret in proptest::option::of("[a-z]{4}"), imported in any::<bool>()) {
        let config = oci_config("d", "u1");
        let created = oci_created(&config, seed);
        let prior = if imported {
            oci::import_state("u1", &created.id)
        } else {
            oci::after_create(&oci::Config::from_value(&config).unwrap(), &created)
        };
        let mut listed = created.clone();
        listed.token = listed_secret;
        let state = oci::refresh(&prior, Some(&listed)).unwrap();
        prop_assert_eq!(state.token, prior.token);
    }
}

mod data_source {
    use model::oci_identity_auth_token::ServerAuthToken;
    use model::oci_identity_auth_tokens as ds;
    use model::value::{Value, conforms_block};
    use proptest::prelude::*;
    use time::OffsetDateTime;

    fn listed() -> impl Strategy<Value = Vec<ServerAuthToken>> {
        proptest::collection::vec(
            (
                prop_oneof![Just("ci deploy"), Just("laptop"), Just("ci old"), Just("")],
                prop_oneof![Just("ACTIVE"), Just("INACTIVE"), Just("DELETING")],
                proptest::option::of(0i64..3),
            ),
            0..6,
        )
        .prop_map(|items| {
            items
                .into_iter()
                .enumerate()
                .map(|(idx, (description, state, expires))| ServerAuthToken {
                    id: format!("ocid1.credential.oc1..{idx}"),
                    user_id: "u1".into(),
                    description: description.into(),
                    token: Some(format!("secret-{idx}")),
                    lifecycle_state: state.into(),
                    inactive_status: None,
                    time_created: OffsetDateTime::UNIX_EPOCH,
                    time_expires: expires
                        .map(|d| OffsetDateTime::UNIX_EPOCH + time::Duration::days(d)),
                })
                .collect()
        })
    }

    fn filters() -> impl Strategy<Value = Vec<ds::Filter>> {
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("description"),
                    Just("state"),
                    Just("time_expires"),
                    Just("token")
                ],
                proptest::collection::vec(
                    prop_oneof![
                        Just("ci"),
                        Just("^ci"),
                        Just("laptop"),
                        Just("ACTIVE"),
                        Just("("),
                        Just("")
                    ],
                    0..3,
                ),
                any::<bool>(),
            ),
            0..3,
        )
        .prop_map(|filters| {
            filters
                .into_iter()
                .map(|(name, values, regex)| ds::Filter {
                    name: name.into(),
                    values: values.into_iter().map(String::from).collect(),
                    regex,
                })
                .collect()
        })
    }

    /// The filter rules written out independently: blocks AND, values OR, regex unanchored
    /// (`^` anchors), an invalid pattern (`(`) matches nothing, a missing attribute never matches.
    fn oracle_keeps(token: &ServerAuthToken, filters: &[ds::Filter]) -> bool {
        filters.iter().all(|f| {
            let actual = match f.name.as_str() {
                "description" => Some(token.description.clone()),
                "state" => Some(token.lifecycle_state.clone()),
                "time_expires" => token
                    .time_expires
                    .map(model::oci_identity_auth_token::format_time),
                _ => None,
            };
            let Some(actual) = actual else { return false };
            f.values
                .iter()
                .any(|wanted| match (f.regex, wanted.as_str()) {
                    (false, w) => w == actual,
                    (true, "(") => false,
                    (true, "^ci") => actual.starts_with("ci"),
                    (true, w) => actual.contains(w),
                })
        })
    }

    proptest! {
        #[test]
        fn filters_and_blocks_or_values_and_never_export_a_secret(listed in listed(), filters in filters()) {
            let config = ds::Config { user_id: "u1".into(), filters };
            let state = ds::read(&Value::object([("user_id", Value::string("u1"))]), &config, &listed);
            prop_assert!(conforms_block(&ds::schema().block, &state), "{:?}", state);
            prop_assert_eq!(state.get("auth_tokens"), state.get("tokens"));
            prop_assert_eq!(state.get("id"), &Value::string(ds::data_source_id("u1")));
            let Value::List(items) = state.get("auth_tokens") else { panic!("not a list") };
            let ids: Vec<&str> = items.iter().filter_map(|i| i.get("id").as_str()).collect();
            let expected: Vec<&str> = listed
                .iter()
                .filter(|t| oracle_keeps(t, &config.filters))
                .map(|t| t.id.as_str())
                .collect();
            prop_assert_eq!(ids, expected);
            prop_assert!(items.iter().all(|i| i.get("token").is_null()));
        }
    }
}
