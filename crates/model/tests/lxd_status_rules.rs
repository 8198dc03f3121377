//! The `lxd_trust_token` status rules that `cargo xtask mutants --in-diff` found untested
//! (issue 20): plan replacing a spent token only under `trigger = "always"` on both sides, the
//! replacement's warning per status, the once-only expiry warning, in-place updates, refresh
//! keeping the consumer, the consumer destroy removes and the expiry seen at import (the
//! servers with unique identity names are in the module's own tests).

use std::collections::BTreeSet;

use model::diag::AttrPath;
use model::lxd_trust_token::{
    self as m, Baseline, Config, Observation, Operation, ServerToken, State, Status, Trigger,
};
use model::value::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-12-03 10:00 UTC);

fn config(trigger: Trigger, remove_consumer_on_destroy: bool) -> Config {
    Config {
        name: "joiner".into(),
        projects: Vec::new(),
        remote: None,
        trigger,
        remove_consumer_on_destroy,
    }
}

fn state(trigger: Trigger, status: Status, consumed_by: Option<&str>) -> State {
    State {
        config: config(trigger, false),
        operation_id: "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1".into(),
        token: "dG9rZW4".into(),
        expires_at: String::new(),
        status,
        consumed_by: consumed_by.map(str::to_owned),
    }
}

fn trigger_config(trigger: &str) -> Value {
    let mut value = state(Trigger::Once, Status::Pending, None).to_value();
    if let Value::Object(map) = &mut value {
        map.insert("trigger".into(), Value::string(trigger));
        for computed in [
            "operation_id",
            "token",
            "expires_at",
            "status",
            "consumed_by",
        ] {
            map.insert(computed.into(), Value::Null);
        }
    }
    value
}

fn spent(trigger: Trigger, status: Status) -> Value {
    state(trigger, status, Some("f".repeat(64).as_str())).to_value()
}

fn replaces_for_status(prior: &Value, config: &Value) -> bool {
    m::plan(Some(prior), config)
        .requires_replace
        .contains(&AttrPath::attr("status"))
}

#[test]
fn only_always_on_both_sides_replaces_a_spent_token_for_its_status() {
    let always = trigger_config("always");
    let once = trigger_config("once");
    assert!(replaces_for_status(
        &spent(Trigger::Always, Status::Consumed),
        &always
    ));
    // A trigger that changes replaces the token for the trigger's sake, never its status.
    assert!(!replaces_for_status(
        &spent(Trigger::Always, Status::Consumed),
        &once
    ));
    assert!(!replaces_for_status(
        &spent(Trigger::Once, Status::Consumed),
        &always
    ));
    assert!(!replaces_for_status(
        &spent(Trigger::Once, Status::Consumed),
        &once
    ));
    // A pending token is never replaced for its status.
    let pending = state(Trigger::Always, Status::Pending, None).to_value();
    assert!(!replaces_for_status(&pending, &always));
}

#[test]
fn the_replacement_warning_says_why_for_each_status() {
    let always = trigger_config("always");
    for (status, why) in [
        (Status::Consumed, "was consumed"),
        (Status::Expired, "expired at"),
        (Status::Revoked, "was revoked"),
        (Status::Unknown, "no proof"),
    ] {
        let prior = spent(Trigger::Always, status);
        let plan = m::plan(Some(&prior), &always);
        let warnings = m::plan_warnings(Some(&prior), &plan);
        assert_eq!(warnings.len(), 1, "{status:?}");
        assert!(
            warnings[0].detail.contains(why),
            "{status:?}: {}",
            warnings[0].detail
        );
    }
}

#[test]
fn only_a_pending_once_token_found_expired_warns() {
    let expired = |trigger| state(trigger, Status::Expired, None);
    let warned = |prior: &State, next: &State| m::refresh_warnings(prior, next).len();
    let pending = state(Trigger::Once, Status::Pending, None);
    assert_eq!(warned(&pending, &expired(Trigger::Once)), 1);
    // Already expired (warned before), consumed before, or `always` (which replaces it).
    assert_eq!(warned(&expired(Trigger::Once), &expired(Trigger::Once)), 0);
    let consumed = state(Trigger::Once, Status::Consumed, Some("c"));
    assert_eq!(warned(&consumed, &expired(Trigger::Once)), 0);
    assert_eq!(
        warned(
            &state(Trigger::Always, Status::Pending, None),
            &expired(Trigger::Always)
        ),
        0
    );
    assert_eq!(warned(&pending, &pending), 0);
}

#[test]
fn an_update_changes_only_remove_consumer_on_destroy() {
    let prior = state(Trigger::Once, Status::Consumed, Some("c"));
    let mut wanted = config(Trigger::Always, true);
    wanted.name = "another".into();
    let next = m::after_update(&prior, &wanted);
    assert!(next.config.remove_consumer_on_destroy);
    assert_eq!(next.config.name, "joiner");
    assert_eq!(next.config.trigger, Trigger::Once);
    assert_eq!(next.consumed_by.as_deref(), Some("c"));
    assert_eq!(next.status, Status::Consumed);
}

#[test]
fn a_refresh_that_proves_a_consumption_names_the_consumer() {
    let prior = state(Trigger::Once, Status::Pending, None);
    let record = Baseline {
        named: BTreeSet::from(["old".to_owned()]),
        rivals: BTreeSet::new(),
        ..Baseline::default()
    };
    let seen = Observation {
        operation: Operation::Gone,
        now: NOW,
        named: BTreeSet::from(["old".to_owned(), "new".to_owned()]),
        rivals: BTreeSet::new(),
    };
    let (next, _) = m::refresh(&prior, Some(&record), &seen);
    assert_eq!(next.status, Status::Consumed);
    assert_eq!(next.consumed_by.as_deref(), Some("new"));
}

#[test]
fn destroy_removes_only_a_proven_consumer_the_user_asked_to_remove() {
    let with = |remove, status, consumer: Option<&str>| {
        let mut s = state(Trigger::Once, status, consumer);
        s.config.remove_consumer_on_destroy = remove;
        s
    };
    let fp = "a".repeat(64);
    let s = with(true, Status::Consumed, Some(&fp));
    assert_eq!(m::consumer_to_remove(&s), Some(fp.as_str()));
    assert_eq!(
        m::consumer_to_remove(&with(false, Status::Consumed, Some(&fp))),
        None
    );
    for status in [
        Status::Pending,
        Status::Expired,
        Status::Revoked,
        Status::Unknown,
    ] {
        assert_eq!(m::consumer_to_remove(&with(true, status, Some(&fp))), None);
    }
    assert_eq!(
        m::consumer_to_remove(&with(true, Status::Consumed, None)),
        None
    );
}

#[test]
fn an_import_reads_expired_from_the_expiry_on_and_pending_before() {
    let token = |expires_at| ServerToken {
        operation_id: "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1".into(),
        name: "joiner".into(),
        token: "dG9rZW4".into(),
        expires_at,
    };
    let status = |expires_at| m::after_import(&token(expires_at), Vec::new(), NOW).status;
    assert_eq!(status(Some(NOW - Duration::minutes(1))), Status::Expired);
    assert_eq!(status(Some(NOW)), Status::Expired);
    assert_eq!(status(Some(NOW + Duration::minutes(1))), Status::Pending);
    assert_eq!(status(None), Status::Pending);
}

#[test]
fn the_lxd_provider_serves_the_token_and_the_token_list() {
    let names: Vec<&str> = model::lxd_types().iter().map(|t| t.name).collect();
    assert_eq!(names, ["lxd_trust_token", "lxd_trust_tokens"]);
}
