//! `lxd_trust_token` against fake-lxd: configurations, server events, and what a refresh must show.

use std::collections::BTreeSet;

use base64::Engine;
use fake_lxd::{FakeLxd, Profile};
use proptest::prelude::*;

use crate::front::{Front, Proto, Step};
use crate::schema::BlockS;
use crate::terraform::*;
use crate::value::Tv;

pub const LXD: &str = "lxd_trust_token";

#[derive(Debug, Clone)]
pub struct LxdCfg {
    pub name: In,
    pub projects: In,
    pub remote: In,
    pub trigger: In,
    /// A computed attribute the user wrongly sets.
    pub computed: Option<(&'static str, &'static str)>,
}

impl LxdCfg {
    pub fn cfg(&self, schema: &BlockS) -> Cfg {
        let build = |plan: bool| {
            let pick = |i: &In| {
                if plan {
                    i.plan.clone()
                } else {
                    i.apply.clone()
                }
            };
            let mut v = Tv::obj([
                ("name", pick(&self.name)),
                ("projects", pick(&self.projects)),
                ("remote", pick(&self.remote)),
                ("trigger", pick(&self.trigger)),
            ]);
            if let Some((attr, value)) = self.computed {
                v.set(attr, Tv::s(value));
            }
            schema.complete(&v)
        };
        let mut invalid = BTreeSet::new();
        if matches!(&self.name.plan, Tv::Null) || self.name.plan.as_str() == Some("") {
            invalid.insert(attr_path("name"));
        }
        if let Some(t) = self.trigger.plan.as_str()
            && t != "once"
            && t != "always"
        {
            invalid.insert(attr_path("trigger"));
        }
        if let Tv::List(items) = &self.projects.plan {
            for (i, p) in items.iter().enumerate() {
                if p.as_str() == Some("") {
                    invalid.insert(vec![Step::Attr("projects".into()), Step::Int(i as i64)]);
                }
            }
        }
        if let Some((attr, _)) = self.computed {
            invalid.insert(attr_path(attr));
        }
        Cfg {
            plan: build(true),
            apply: build(false),
            invalid,
        }
    }
}

pub fn lxd_cfg() -> impl Strategy<Value = LxdCfg> {
    let names = &["tok-a", "tok-b", "ci runner ✓", "a/b?c=\"d\"\\"];
    let name = prop_oneof![
        12 => pick(names).prop_map(known),
        4 => pick(names).prop_map(later),
        1 => Just(known(Tv::s(""))),
        1 => Just(known(Tv::Null)),
    ];
    let project_list = proptest::sample::subsequence(vec!["default", "default"], 0..=2)
        .prop_map(|ps| Tv::List(ps.into_iter().map(Tv::s).collect()));
    let projects = prop_oneof![
        8 => Just(known(Tv::Null)),
        6 => project_list.clone().prop_map(known),
        1 => Just(known(Tv::List(vec![Tv::s("p1"), Tv::s("")]))),
        2 => project_list.prop_map(later),
        2 => pick(&["default", "default"]).prop_map(|p| In {
            plan: Tv::List(vec![Tv::Unknown]),
            apply: Tv::List(vec![p]),
        }),
    ];
    let remote = prop_oneof![4 => Just(known(Tv::Null)), 1 => Just(known(Tv::s("fake")))];
    let trigger = prop_oneof![
        6 => Just(known(Tv::Null)),
        4 => Just(known(Tv::s("once"))),
        6 => Just(known(Tv::s("always"))),
        1 => pick(&["sometimes", "ONCE", ""]).prop_map(known),
        2 => pick(&["once", "always"]).prop_map(later),
    ];
    let computed = prop_oneof![
        24 => Just(None),
        1 => proptest::sample::select(&["token", "expires_at", "operation_id", "id"][..])
            .prop_map(|a| Some((a, "2026/01/01 00:20 UTC"))),
    ];
    (name, projects, remote, trigger, computed).prop_map(
        |(name, projects, remote, trigger, computed)| LxdCfg {
            name,
            projects,
            remote,
            trigger,
            computed,
        },
    )
}

#[derive(Debug, Clone)]
pub enum LxdEvent {
    /// A client joins with the resource's token.
    Consume,
    /// The clock moves past any configured expiry, and the expiry sweep runs.
    PastExpiry,
    /// The clock moves one minute (less than any expiry here).
    Minute,
    /// The daemon restarts: pending tokens are lost.
    Restart,
    /// Someone revokes the token (`lxc config trust revoke-token`).
    Revoke,
    /// `lxc config set core.remote_token_expiry=...`, valid or not.
    SetExpiry(&'static str),
}

pub const VALID_EXPIRY: &[&str] = &["", "20M", "1H", "1H 30M", "2d"];
pub const INVALID_EXPIRY: &[&str] = &["20", "1x", "-5M", "M", "1 H"];

pub fn lxd_event() -> impl Strategy<Value = Option<LxdEvent>> {
    prop_oneof![
        4 => Just(None),
        2 => Just(Some(LxdEvent::Consume)),
        1 => Just(Some(LxdEvent::PastExpiry)),
        1 => Just(Some(LxdEvent::Minute)),
        1 => Just(Some(LxdEvent::Restart)),
        1 => Just(Some(LxdEvent::Revoke)),
        1 => proptest::sample::select(VALID_EXPIRY).prop_map(|e| Some(LxdEvent::SetExpiry(e))),
        1 => proptest::sample::select(INVALID_EXPIRY).prop_map(|e| Some(LxdEvent::SetExpiry(e))),
    ]
}

#[derive(Debug, Clone)]
pub struct LxdCase {
    pub v6_profile: bool,
    /// The fake's clock starts three days behind the provider's (the wall clock), so every
    /// token with an expiry is already past it when the provider looks, as a token is that
    /// expired but that the server has not swept yet.
    pub behind: bool,
    pub seed: u64,
    pub expiry: &'static str,
    pub first: LxdCfg,
    /// Each step's configuration (`None`: the same as before) and the server event after it.
    pub steps: Vec<(Option<LxdCfg>, Option<LxdEvent>)>,
}

pub fn lxd_case() -> impl Strategy<Value = LxdCase> {
    (
        any::<bool>(),
        proptest::bool::weighted(0.25),
        0u64..4,
        proptest::sample::select(VALID_EXPIRY),
        lxd_cfg(),
        proptest::collection::vec(
            (proptest::option::weighted(0.5, lxd_cfg()), lxd_event()),
            1..=6,
        ),
    )
        .prop_map(|(v6_profile, behind, seed, expiry, first, steps)| LxdCase {
            v6_profile,
            behind,
            seed,
            expiry,
            first,
            steps,
        })
}

pub fn lxd_defaults(name: &str) -> Option<Tv> {
    match name {
        "trigger" => Some(Tv::s("once")),
        "projects" => Some(Tv::List(Vec::new())),
        _ => None,
    }
}

/// Every token string the fake holds, and the secret inside each.
pub fn lxd_secrets(fake: &FakeLxd, into: &mut BTreeSet<String>) {
    let state = fake.control().state();
    for op in state["operations"].as_array().into_iter().flatten() {
        let Some(token) = op["token"].as_str() else {
            continue;
        };
        into.insert(token.to_owned());
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token)
            && let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(secret) = json["secret"].as_str()
        {
            into.insert(secret.to_owned());
        }
    }
}

/// What a refresh of `state` must show, from the server's pending tokens: a token that is no
/// longer pending, or whose expiry is past, is kept with a status that says so, and replaced
/// exactly when its trigger is `always`.
fn lxd_expect(control: &fake_lxd::Control, state: &Tv) -> Expect {
    let Some(id) = state.get("operation_id").as_str() else {
        return Expect::Unchanged;
    };
    let spent = Expect::Spent {
        replace: state.get("trigger").as_str() == Some("always"),
    };
    if state.get("status").as_str().is_some_and(|s| s != "pending") {
        return spent;
    }
    let pending = control.pending_tokens();
    let Some((_, token)) = pending.iter().find(|(op, _)| op == id) else {
        return spent;
    };
    // Expiry is measured against the server's clock, as the provider measures it.
    let server_now = control.state()["now"]
        .as_str()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    match token_expiry(token) {
        Some(at) if at <= server_now => spent,
        _ => Expect::Unchanged,
    }
}

/// The expiry a token string carries (`0001-01-01T00:00:00Z` when it does not expire).
fn token_expiry(token: &str) -> Option<time::OffsetDateTime> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let at = time::OffsetDateTime::parse(
        json["expires_at"].as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    (at.year() > 1).then_some(at)
}

pub async fn run_lxd(case: LxdCase, proto: Proto) {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("unix.socket");
    // The provider compares expiry with the wall clock, so the fake's manual clock starts at
    // the wall clock (or three days before it) and then moves only when an event says so.
    let skew = if case.behind {
        time::Duration::days(3)
    } else {
        time::Duration::ZERO
    };
    let start = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole second")
        - skew;
    let fake = FakeLxd::start(fake_lxd::Config {
        profile: if case.v6_profile {
            Profile::V6
        } else {
            Profile::V5_0
        },
        seed: case.seed,
        clock: fake_lxd::ClockMode::Manual(start),
        unix_socket: Some(socket.clone()),
        ..fake_lxd::Config::for_testing()
    })
    .await
    .expect("fake-lxd starts");
    let control = fake.control();
    control
        .set_config("core.remote_token_expiry", case.expiry)
        .expect("a valid expiry is accepted");

    let front = Front::new(provider::lxd::LxdProvider::default(), proto);
    let (provider_schema, schema) = front.schemas(LXD).await;
    let provider_config = provider_schema.complete(&Tv::obj([
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
    let diags = front.configure(&provider_config).await;
    assert!(errors(&diags).is_empty(), "configure: {diags:?}");

    let mut tf = Terraform {
        front,
        schema: schema.clone(),
        rules: Rules {
            type_name: LXD,
            force_new: &["name", "projects", "remote", "trigger"],
            defaults: lxd_defaults,
        },
        state: Tv::Null,
        diags: Vec::new(),
    };
    let mut secrets = BTreeSet::new();
    let after = |state: &Tv| lxd_expect(&control, state);
    let mut lxd_cfg = &case.first;
    for (next, event) in &case.steps {
        lxd_cfg = next.as_ref().unwrap_or(lxd_cfg);
        let cfg = lxd_cfg.cfg(&schema);
        let expect = lxd_expect(&control, &tf.state);
        if tf.step(&cfg, &expect, &after).await {
            // Replacements revoke what they replace: no usable token is left behind.
            let mine = tf.state.get("operation_id").as_str();
            let now = time::OffsetDateTime::now_utc();
            let others: Vec<String> = control
                .pending_tokens()
                .into_iter()
                .filter(|(id, token)| {
                    Some(id.as_str()) != mine && token_expiry(token).is_none_or(|at| at > now)
                })
                .map(|(id, _)| id)
                .collect();
            assert!(
                others.is_empty(),
                "tokens left behind on the server: {others:?}"
            );
        }
        lxd_secrets(&fake, &mut secrets);
        if let Some(token) = tf.state.get("token").as_str() {
            secrets.insert(token.to_owned());
        }
        let Some(event) = event else { continue };
        control.idle().await;
        let op_id = tf.state.get("operation_id").as_str().map(str::to_owned);
        match event {
            LxdEvent::Consume => {
                if let Some(token) = tf.state.get("token").as_str() {
                    let (status, _, client) = control.consume(token, None);
                    let pending = op_id
                        .as_ref()
                        .is_some_and(|id| control.pending_tokens().iter().any(|(o, _)| o == id));
                    assert!(!pending, "a consumed token is no longer pending ({status})");
                    // This harness keeps no private state, so the provider cannot prove the
                    // consumption and would not remove the consumer; an admin does, so that
                    // profile 6 (unique identity names) lets the name be used again.
                    let admin = lxd_client::Client::new(
                        lxd_client::Target::Unix(socket.clone()),
                        lxd_client::RetryPolicy::default(),
                    );
                    admin
                        .delete_certificate(&client.fingerprint)
                        .await
                        .expect("out-of-band certificate removal");
                }
            }
            LxdEvent::PastExpiry => {
                control.advance(std::time::Duration::from_secs(3 * 86400 + 7200))
            }
            LxdEvent::Minute => control.advance(std::time::Duration::from_secs(60)),
            LxdEvent::Restart => control.restart(),
            LxdEvent::Revoke => {
                if let Some(id) = &op_id {
                    let client = lxd_client::Client::new(
                        lxd_client::Target::Unix(socket.clone()),
                        lxd_client::RetryPolicy::default(),
                    );
                    client.revoke(id).await.expect("out-of-band revoke");
                }
            }
            LxdEvent::SetExpiry(e) => {
                let before = control.state()["config"].clone();
                let result = control.set_config("core.remote_token_expiry", e);
                if INVALID_EXPIRY.contains(e) {
                    assert!(result.is_err(), "expiry {e:?} is refused");
                    assert_eq!(
                        control.state()["config"],
                        before,
                        "a refused expiry changes nothing"
                    );
                } else {
                    assert!(result.is_ok(), "expiry {e:?} is accepted");
                }
            }
        }
    }
    lxd_secrets(&fake, &mut secrets);
    tf.assert_no_secret(&secrets);
}
