//! Whole Terraform lifecycles, checked against a reference model with `proptest-state-machine`.
//!
//! Each case is a random run of configuration edits, `terraform apply`s and things that happen
//! on the server meanwhile (a token is consumed, the clock moves, someone edits a description).
//! The system under test drives the model's functions the way the provider does (refresh, plan,
//! create/update/replace, next plan) against a tiny in-test server.
//! The reference model says, from first principles, which action each apply must take.
//!
//! Raise the case count locally with `PROPTEST_CASES=5000 cargo nextest run -p model --test lifecycle`.

use std::collections::{BTreeMap, BTreeSet};

use model::lxd_trust_token as lxd;
use model::oci_identity_auth_token as oci;
use model::plan::{Action, Plan};
use model::schema::Presence;
use model::value::{Value, conforms_block};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use time::OffsetDateTime;

/// Minutes since an arbitrary fixed epoch, as an instant.
fn instant(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
        + time::Duration::seconds(1_800_000_000)
        + time::Duration::minutes(minutes)
}

/// Terraform's rule: a non-computed attribute is planned exactly as configured.
fn assert_plan_honours_config(schema: &model::schema::TypeSchema, config: &Value, plan: &Plan) {
    for attr in &schema.block.attributes {
        let configured = config.get(attr.name);
        let written = match attr.presence {
            Presence::Required | Presence::Optional => true,
            Presence::OptionalComputed => !configured.is_null(),
            Presence::Computed => false,
        };
        if written {
            assert_eq!(plan.planned.get(attr.name), configured, "{}", attr.name);
        }
    }
}

/// Terraform's rule: what apply returns agrees with every known planned value.
fn assert_apply_matches_plan(plan: &Plan, applied: &Value) {
    let (Value::Object(planned), Value::Object(applied)) = (&plan.planned, applied) else {
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

// ---------------------------------------------------------------------------------------------
// lxd_trust_token
// ---------------------------------------------------------------------------------------------

/// The inputs a user writes; `None` means the attribute is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LxdInputs {
    name: String,
    projects: Option<Vec<String>>,
    remote: Option<String>,
    trigger: Option<lxd::Trigger>,
}

impl LxdInputs {
    /// The inputs with the schema's defaults filled in, as they end up in state.
    fn effective(&self) -> (String, Vec<String>, Option<String>, lxd::Trigger) {
        (
            self.name.clone(),
            self.projects.clone().unwrap_or_default(),
            self.remote.clone(),
            self.trigger.unwrap_or(lxd::Trigger::Once),
        )
    }

    /// The configuration as Terraform sends it: every attribute present, unset ones null.
    fn to_value(&self) -> Value {
        let strings = |items: &Vec<String>| Value::List(items.iter().map(Value::string).collect());
        Value::object([
            ("name", Value::string(&self.name)),
            (
                "projects",
                self.projects.as_ref().map_or(Value::Null, strings),
            ),
            (
                "remote",
                self.remote.as_ref().map_or(Value::Null, Value::string),
            ),
            (
                "trigger",
                self.trigger
                    .map_or(Value::Null, |t| Value::string(t.as_str())),
            ),
            ("token", Value::Null),
            ("expires_at", Value::Null),
            ("operation_id", Value::Null),
            ("id", Value::Null),
            ("status", Value::Null),
            ("consumed_by", Value::Null),
            ("remove_consumer_on_destroy", Value::Null),
        ])
    }
}

fn lxd_inputs() -> impl Strategy<Value = LxdInputs> {
    (
        prop_oneof![Just("mytoken".to_owned()), Just("other".to_owned())],
        proptest::option::of(prop_oneof![
            Just(Vec::new()),
            Just(vec!["default".to_owned()]),
            Just(vec!["p1".to_owned(), "p2".to_owned()]),
        ]),
        proptest::option::of(Just("r1".to_owned())),
        proptest::option::of(prop_oneof![
            Just(lxd::Trigger::Once),
            Just(lxd::Trigger::Always)
        ]),
    )
        .prop_map(|(name, projects, remote, trigger)| LxdInputs {
            name,
            projects,
            remote,
            trigger,
        })
}

/// A token the reference model knows about: which issue it was and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LxdIssued {
    seq: u32,
    expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
struct LxdRef {
    inputs: LxdInputs,
    now: i64,
    /// `core.remote_token_expiry` in minutes, for tokens issued from now on.
    expiry: Option<i64>,
    /// Tokens still pending on the server.
    pending: Vec<LxdIssued>,
    /// What Terraform's state holds: the token it tracks and the inputs it was made for.
    tracked: Option<(LxdIssued, LxdInputs)>,
    issued: u32,
    /// The action the last apply must have taken.
    last_action: Option<Action>,
}

#[derive(Debug, Clone)]
enum LxdStep {
    Configure(LxdInputs),
    Apply,
    /// Someone joins with the token, or it is revoked: LXD cannot tell which.
    Consume(u32),
    Advance(i64),
    /// The server drops pending tokens whose expiry has passed.
    Sweep,
    SetExpiry(Option<i64>),
}

struct LxdMachine;

impl ReferenceStateMachine for LxdMachine {
    type State = LxdRef;
    type Transition = LxdStep;

    fn init_state() -> BoxedStrategy<LxdRef> {
        (lxd_inputs(), proptest::option::of(1i64..30))
            .prop_map(|(inputs, expiry)| LxdRef {
                inputs,
                now: 0,
                expiry,
                pending: Vec::new(),
                tracked: None,
                issued: 0,
                last_action: None,
            })
            .boxed()
    }

    fn transitions(state: &LxdRef) -> BoxedStrategy<LxdStep> {
        let pending: Vec<u32> = state.pending.iter().map(|t| t.seq).collect();
        let consume = if pending.is_empty() {
            Just(LxdStep::Apply).boxed()
        } else {
            proptest::sample::select(pending)
                .prop_map(LxdStep::Consume)
                .boxed()
        };
        prop_oneof![
            2 => lxd_inputs().prop_map(LxdStep::Configure),
            4 => Just(LxdStep::Apply),
            2 => consume,
            2 => (1i64..40).prop_map(LxdStep::Advance),
            1 => Just(LxdStep::Sweep),
            1 => proptest::option::of(1i64..30).prop_map(LxdStep::SetExpiry),
        ]
        .boxed()
    }

    fn apply(mut state: LxdRef, step: &LxdStep) -> LxdRef {
        match step {
            LxdStep::Configure(inputs) => state.inputs = inputs.clone(),
            LxdStep::Consume(seq) => state.pending.retain(|t| t.seq != *seq),
            LxdStep::Advance(minutes) => state.now += minutes,
            LxdStep::Sweep => {
                let now = state.now;
                state
                    .pending
                    .retain(|t| t.expires_at.is_none_or(|at| at > now));
            }
            LxdStep::SetExpiry(expiry) => state.expiry = *expiry,
            LxdStep::Apply => {
                // A token that is gone, or whose expiry has passed, can no longer be used:
                // `always` replaces it (revoking it if it is still listed), `once` keeps it.
                let action = match &state.tracked {
                    None => Action::Create,
                    Some((_, made_for)) if made_for.effective() != state.inputs.effective() => {
                        Action::Replace
                    }
                    Some((token, made_for)) => {
                        let listed = state.pending.contains(token);
                        let expired = token.expires_at.is_some_and(|at| at <= state.now);
                        let always = made_for.effective().3 == lxd::Trigger::Always;
                        if always && (!listed || expired) {
                            Action::Replace
                        } else {
                            Action::NoOp
                        }
                    }
                };
                if action == Action::Replace
                    && let Some((old, _)) = &state.tracked
                {
                    let old = old.seq;
                    state.pending.retain(|t| t.seq != old);
                }
                if action != Action::NoOp {
                    state.issued += 1;
                    let token = LxdIssued {
                        seq: state.issued,
                        expires_at: state.expiry.map(|e| state.now + e),
                    };
                    state.pending.push(token.clone());
                    state.tracked = Some((token, state.inputs.clone()));
                }
                state.last_action = Some(action);
            }
        }
        state
    }
}

fn lxd_operation_id(seq: u32) -> String {
    format!("00000000-0000-4000-8000-{seq:012x}")
}

fn lxd_secret(seq: u32) -> String {
    format!("dG9rZW4t{seq:08x}")
}

/// The in-test LXD server and Terraform's stored state.
struct LxdSut {
    now: i64,
    expiry: Option<i64>,
    /// Pending token operations by id.
    server: BTreeMap<String, lxd::ServerToken>,
    issued: u32,
    every_secret: BTreeSet<String>,
    config: Value,
    state: Option<Value>,
    /// The provider's private record of the token in state.
    record: Option<lxd::Baseline>,
}

impl LxdSut {
    /// What the provider sees: the operation, and an empty trust store (this server records
    /// no consumers, so no consumption is ever proven here).
    fn observe(&self, operation_id: &str) -> lxd::Observation {
        lxd::Observation {
            operation: match self.server.get(operation_id) {
                Some(found) => lxd::Operation::Running(found.clone()),
                None => lxd::Operation::Gone,
            },
            now: instant(self.now),
            named: BTreeSet::new(),
            rivals: BTreeSet::new(),
        }
    }

    fn create(&mut self, config: &lxd::Config) -> lxd::ServerToken {
        self.issued += 1;
        let token = lxd::ServerToken {
            operation_id: lxd_operation_id(self.issued),
            name: config.name.clone(),
            token: lxd_secret(self.issued),
            expires_at: self.expiry.map(|e| instant(self.now + e)),
        };
        self.every_secret.insert(token.token.clone());
        self.server
            .insert(token.operation_id.clone(), token.clone());
        token
    }

    /// `terraform apply`: refresh, plan, apply, then check that the next plan is empty.
    fn apply(&mut self) -> Action {
        let refreshed = self.state.take().map(|value| {
            let prior = lxd::State::from_value(&value).expect("stored state is readable");
            let (state, record) = lxd::refresh(
                &prior,
                self.record.as_ref(),
                &self.observe(&prior.operation_id),
            );
            self.record = record;
            state
        });
        let prior = refreshed.as_ref().map(lxd::State::to_value);
        assert!(lxd::validate(&self.config).is_empty());
        let plan = lxd::plan(prior.as_ref(), &self.config);
        assert_plan_honours_config(&lxd::schema(), &self.config, &plan);
        let applied = match plan.action {
            Action::NoOp => prior.clone().expect("NoOp has a prior state"),
            Action::Create | Action::Replace => {
                if let Some(old) = &refreshed {
                    self.server.remove(&old.operation_id);
                }
                let config =
                    lxd::Config::from_value(&plan.planned).expect("planned config is readable");
                let created = self.create(&config);
                self.record = Some(lxd::Baseline::default());
                lxd::after_create(config, &created).to_value()
            }
            Action::Update => panic!("lxd_trust_token has no in-place update: {plan:?}"),
        };
        assert_apply_matches_plan(&plan, &applied);
        let next = lxd::plan(Some(&applied), &self.config);
        assert_eq!(
            next.action,
            Action::NoOp,
            "the plan after an apply must be empty"
        );
        assert_eq!(next.planned, applied);
        self.state = Some(applied);
        plan.action
    }
}

impl StateMachineTest for LxdMachine {
    type SystemUnderTest = LxdSut;
    type Reference = LxdMachine;

    fn init_test(reference: &LxdRef) -> LxdSut {
        LxdSut {
            now: reference.now,
            expiry: reference.expiry,
            server: BTreeMap::new(),
            issued: 0,
            every_secret: BTreeSet::new(),
            config: reference.inputs.to_value(),
            state: None,
            record: None,
        }
    }

    fn apply(mut sut: LxdSut, reference: &LxdRef, step: LxdStep) -> LxdSut {
        match step {
            LxdStep::Configure(inputs) => sut.config = inputs.to_value(),
            LxdStep::Consume(seq) => {
                sut.server.remove(&lxd_operation_id(seq));
            }
            LxdStep::Advance(minutes) => sut.now += minutes,
            LxdStep::Sweep => {
                let now = instant(sut.now);
                sut.server
                    .retain(|_, t| t.expires_at.is_none_or(|at| at > now));
            }
            LxdStep::SetExpiry(expiry) => sut.expiry = expiry,
            LxdStep::Apply => {
                let action = sut.apply();
                assert_eq!(Some(action), reference.last_action);
            }
        }
        sut
    }

    fn check_invariants(sut: &LxdSut, reference: &LxdRef) {
        assert_eq!(
            sut.issued, reference.issued,
            "tokens requested from the server"
        );
        let pending: BTreeSet<String> = reference
            .pending
            .iter()
            .map(|t| lxd_operation_id(t.seq))
            .collect();
        assert_eq!(sut.server.keys().cloned().collect::<BTreeSet<_>>(), pending);
        let Some(value) = &sut.state else {
            return;
        };
        assert!(conforms_block(&lxd::schema().block, value), "{value:?}");
        let state = lxd::State::from_value(value).expect("stored state is readable");
        // The token in state is one the server issued, for the operation the state names.
        let (tracked, _) = reference
            .tracked
            .as_ref()
            .expect("the reference tracks a token");
        assert_eq!(state.operation_id, lxd_operation_id(tracked.seq));
        assert_eq!(value.get("id"), value.get("operation_id"));
        assert_eq!(state.token, lxd_secret(tracked.seq));
        assert!(sut.every_secret.contains(&state.token));
        assert_eq!(
            state.expires_at,
            lxd::format_expires_at(tracked.expires_at.map(instant))
        );
        // This server shows no trust store, so nothing is ever claimed consumed.
        assert_ne!(state.status, lxd::Status::Consumed);
        assert_eq!(state.consumed_by, None);
    }
}

// ---------------------------------------------------------------------------------------------
// oci_identity_auth_token
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct OciInputs {
    description: String,
    user: String,
}

impl OciInputs {
    fn to_value(&self) -> Value {
        let mut value = Value::null_block(&oci::schema().block);
        if let Value::Object(map) = &mut value {
            map.insert("description".into(), Value::string(&self.description));
            map.insert("user_id".into(), Value::string(&self.user));
        }
        value
    }
}

fn oci_inputs() -> impl Strategy<Value = OciInputs> {
    (
        prop_oneof![
            Just(String::new()),
            Just("ci".to_owned()),
            Just("laptop".to_owned())
        ],
        prop_oneof![Just("u1".to_owned()), Just("u2".to_owned())],
    )
        .prop_map(|(description, user)| OciInputs { description, user })
}

#[derive(Debug, Clone)]
struct OciRef {
    inputs: OciInputs,
    /// Tokens on the server: sequence number to (user, description).
    server: BTreeMap<u32, (String, String)>,
    /// The token Terraform's state tracks.
    tracked: Option<u32>,
    issued: u32,
    last_action: Option<Action>,
}

#[derive(Debug, Clone)]
enum OciStep {
    Configure(OciInputs),
    Apply,
    /// Someone deletes the token outside Terraform.
    DeleteOutside(u32),
    /// Someone changes the description outside Terraform.
    EditOutside(u32, String),
}

struct OciMachine;

impl ReferenceStateMachine for OciMachine {
    type State = OciRef;
    type Transition = OciStep;

    fn init_state() -> BoxedStrategy<OciRef> {
        oci_inputs()
            .prop_map(|inputs| OciRef {
                inputs,
                server: BTreeMap::new(),
                tracked: None,
                issued: 0,
                last_action: None,
            })
            .boxed()
    }

    fn transitions(state: &OciRef) -> BoxedStrategy<OciStep> {
        let existing: Vec<u32> = state.server.keys().copied().collect();
        if existing.is_empty() {
            return prop_oneof![
                1 => oci_inputs().prop_map(OciStep::Configure),
                2 => Just(OciStep::Apply),
            ]
            .boxed();
        }
        prop_oneof![
            2 => oci_inputs().prop_map(OciStep::Configure),
            4 => Just(OciStep::Apply),
            1 => proptest::sample::select(existing.clone()).prop_map(OciStep::DeleteOutside),
            2 => (proptest::sample::select(existing), prop_oneof![Just("edited".to_owned()), Just("ci".to_owned())])
                .prop_map(|(seq, d)| OciStep::EditOutside(seq, d)),
        ]
        .boxed()
    }

    fn apply(mut state: OciRef, step: &OciStep) -> OciRef {
        match step {
            OciStep::Configure(inputs) => state.inputs = inputs.clone(),
            OciStep::DeleteOutside(seq) => {
                state.server.remove(seq);
            }
            OciStep::EditOutside(seq, description) => {
                if let Some(token) = state.server.get_mut(seq) {
                    token.1 = description.clone();
                }
            }
            OciStep::Apply => {
                if state
                    .tracked
                    .is_some_and(|seq| !state.server.contains_key(&seq))
                {
                    state.tracked = None;
                }
                let action = match state.tracked.map(|seq| state.server[&seq].clone()) {
                    None => Action::Create,
                    Some((user, _)) if user != state.inputs.user => Action::Replace,
                    Some((_, description)) if description != state.inputs.description => {
                        Action::Update
                    }
                    Some(_) => Action::NoOp,
                };
                match action {
                    Action::Create | Action::Replace => {
                        if let Some(old) = state.tracked {
                            state.server.remove(&old);
                        }
                        state.issued += 1;
                        let entry = (state.inputs.user.clone(), state.inputs.description.clone());
                        state.server.insert(state.issued, entry);
                        state.tracked = Some(state.issued);
                    }
                    Action::Update => {
                        let seq = state.tracked.expect("an update has a token");
                        if let Some(token) = state.server.get_mut(&seq) {
                            token.1 = state.inputs.description.clone();
                        }
                    }
                    Action::NoOp => {}
                }
                state.last_action = Some(action);
            }
        }
        state
    }
}

fn oci_id(seq: u32) -> String {
    format!("ocid1.credential.oc1..{seq:08x}")
}

fn oci_secret(seq: u32) -> String {
    format!("secret-{seq:08x}")
}

struct OciSut {
    /// Tokens on the server as a list call shows them (never with the secret).
    server: BTreeMap<String, oci::ServerAuthToken>,
    issued: u32,
    config: Value,
    state: Option<Value>,
}

impl OciSut {
    fn apply(&mut self) -> Action {
        let refreshed = self.state.take().and_then(|value| {
            let prior = oci::State::from_value(&value).expect("stored state is readable");
            oci::refresh(&prior, self.server.get(&prior.id))
        });
        let prior = refreshed.as_ref().map(oci::State::to_value);
        assert!(oci::validate(&self.config).is_empty());
        let plan = oci::plan(prior.as_ref(), &self.config);
        assert_plan_honours_config(&oci::schema(), &self.config, &plan);
        let config = oci::Config::from_value(&plan.planned).expect("planned config is readable");
        let applied = match plan.action {
            Action::NoOp => refreshed.expect("NoOp has a prior state"),
            Action::Update => {
                let prior = refreshed.expect("an update has a prior state");
                let token = self.server.get_mut(&prior.id).expect("the token exists");
                token.description = config.description.clone();
                oci::after_update(&prior, &config)
            }
            Action::Create | Action::Replace => {
                if let Some(old) = &refreshed {
                    self.server.remove(&old.id);
                }
                self.issued += 1;
                let created = oci::ServerAuthToken {
                    id: oci_id(self.issued),
                    user_id: config.user_id.clone(),
                    description: config.description.clone(),
                    token: Some(oci_secret(self.issued)),
                    lifecycle_state: "ACTIVE".into(),
                    inactive_status: None,
                    time_created: instant(i64::from(self.issued)),
                    time_expires: None,
                };
                let listed = oci::ServerAuthToken {
                    token: None,
                    ..created.clone()
                };
                self.server.insert(created.id.clone(), listed);
                oci::after_create(&config, &created)
            }
        };
        let applied = applied.to_value();
        assert_apply_matches_plan(&plan, &applied);
        let next = oci::plan(Some(&applied), &self.config);
        assert_eq!(
            next.action,
            Action::NoOp,
            "the plan after an apply must be empty"
        );
        self.state = Some(applied);
        plan.action
    }
}

impl StateMachineTest for OciMachine {
    type SystemUnderTest = OciSut;
    type Reference = OciMachine;

    fn init_test(reference: &OciRef) -> OciSut {
        OciSut {
            server: BTreeMap::new(),
            issued: 0,
            config: reference.inputs.to_value(),
            state: None,
        }
    }

    fn apply(mut sut: OciSut, reference: &OciRef, step: OciStep) -> OciSut {
        match step {
            OciStep::Configure(inputs) => sut.config = inputs.to_value(),
            OciStep::DeleteOutside(seq) => {
                sut.server.remove(&oci_id(seq));
            }
            OciStep::EditOutside(seq, description) => {
                if let Some(token) = sut.server.get_mut(&oci_id(seq)) {
                    token.description = description;
                }
            }
            OciStep::Apply => {
                let action = sut.apply();
                assert_eq!(Some(action), reference.last_action);
            }
        }
        sut
    }

    fn check_invariants(sut: &OciSut, reference: &OciRef) {
        assert_eq!(sut.issued, reference.issued, "tokens created on the server");
        let on_server: BTreeSet<String> = reference.server.keys().map(|s| oci_id(*s)).collect();
        assert_eq!(
            sut.server.keys().cloned().collect::<BTreeSet<_>>(),
            on_server
        );
        let Some(value) = &sut.state else {
            return;
        };
        assert!(conforms_block(&oci::schema().block, value), "{value:?}");
        let state = oci::State::from_value(value).expect("stored state is readable");
        // The secret is the one created with the tracked token: never lost to a refresh or an
        // update, never taken from another token.
        let seq = reference.tracked.expect("the reference tracks a token");
        assert_eq!(state.id, oci_id(seq));
        assert_eq!(state.token.as_deref(), Some(oci_secret(seq).as_str()));
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn lxd_trust_token_lifecycles(sequential 1..40 => LxdMachine);

    #[test]
    fn oci_auth_token_lifecycles(sequential 1..40 => OciMachine);
}
