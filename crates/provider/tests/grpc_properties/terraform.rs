//! Terraform's part: validate, refresh, plan, re-plan at apply time, apply, plan again, with
//! Terraform's checks at each step.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;

use crate::front::{Diag, Front, Planned, Step};
use crate::schema::BlockS;
use crate::value::{Tv, compatible, to_json};

/// One configuration as Terraform sends it while planning (unknowns allowed) and once every
/// value is known at apply time, with the attribute paths that must be reported invalid.
#[derive(Debug, Clone)]
pub struct Cfg {
    pub plan: Tv,
    pub apply: Tv,
    pub invalid: BTreeSet<Vec<Step>>,
}

/// What the documentation says a refresh finds after the server events since the last apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Unchanged,
    Gone,
    /// An LXD token that can no longer be used: the state is kept with a status other than
    /// `pending` (and maybe `consumed_by`); `replace` when its trigger replaces it.
    Spent {
        replace: bool,
    },
    Description(String),
}

/// The action Terraform derives from a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Replace,
    NoOp,
}

/// The resource type's facts from the users' documents.
pub struct Rules {
    pub type_name: &'static str,
    /// Attributes whose change forces a new object.
    pub force_new: &'static [&'static str],
    /// Defaults of optional-computed attributes left unset.
    pub defaults: fn(&str) -> Option<Tv>,
}

pub struct Terraform {
    pub front: Front,
    pub schema: BlockS,
    pub rules: Rules,
    /// The saved state, `Null` when there is none.
    pub state: Tv,
    /// Every diagnostic the provider returned.
    pub diags: Vec<Diag>,
}

/// Terraform's proposed new state: the configuration, with prior values for computed
/// attributes the configuration leaves null.
pub fn proposed(schema: &BlockS, prior: &Tv, config: &Tv) -> Tv {
    let mut out = config.clone();
    for attr in schema.attrs.iter().filter(|a| a.computed) {
        if config.get(&attr.name).is_null() {
            out.set(&attr.name, prior.get(&attr.name).clone());
        }
    }
    out
}

pub fn attr_path(name: &str) -> Vec<Step> {
    vec![Step::Attr(name.to_owned())]
}

pub fn errors(diags: &[Diag]) -> Vec<&Diag> {
    diags.iter().filter(|d| d.error).collect()
}

impl Terraform {
    pub fn record(&mut self, diags: &[Diag]) {
        self.diags.extend(diags.iter().cloned());
    }

    /// Terraform's choice of action for a plan (`plan` in Terraform's resource instance node).
    pub fn action(prior: &Tv, planned: &Tv, requires_replace: &[Vec<Step>]) -> Action {
        if prior.is_null() {
            return Action::Create;
        }
        if planned.surely_eq(prior) {
            return Action::NoOp;
        }
        let replace = requires_replace.iter().any(|p| match p.as_slice() {
            [Step::Attr(name)] => !planned.get(name).surely_eq(prior.get(name)),
            _ => true,
        });
        if replace {
            Action::Replace
        } else {
            Action::Update
        }
    }

    /// Checks a plan against the planning contract and the type's documented behaviour.
    pub fn check_plan(&self, prior: &Tv, config: &Tv, p: &Planned) -> Action {
        assert!(errors(&p.diags).is_empty(), "plan failed: {:?}", p.diags);
        let planned = &p.planned;
        let Tv::Obj(map) = planned else {
            panic!("planned state is not an object: {planned:?}");
        };
        assert_eq!(
            map.keys().cloned().collect::<BTreeSet<_>>(),
            self.schema.keys(),
            "planned state must have every attribute and block"
        );
        let replace_paths: BTreeSet<&Vec<Step>> = p.requires_replace.iter().collect();
        if prior.is_null() {
            assert!(
                p.requires_replace.is_empty(),
                "a create requires no replacement"
            );
        }
        for path in &p.requires_replace {
            let [Step::Attr(name)] = path.as_slice() else {
                panic!("requires_replace path {path:?} is not an attribute");
            };
            assert!(
                !planned.get(name).surely_eq(prior.get(name)),
                "requires_replace names {name}, which does not change: {prior:?} -> {planned:?}"
            );
        }
        let action = Self::action(prior, planned, &p.requires_replace);
        for attr in &self.schema.attrs {
            let name = attr.name.as_str();
            let (c, v) = (config.get(name), planned.get(name));
            if !attr.computed || !c.is_null() {
                // Configured values are planned exactly as written, unknowns included.
                assert_eq!(v, c, "planned {name} must equal the configuration");
            } else if attr.optional {
                if let Some(default) = (self.rules.defaults)(name) {
                    assert_eq!(v, &default, "unset {name} plans its default");
                }
            } else if prior.is_null() || action == Action::Replace {
                assert_eq!(v, &Tv::Unknown, "{name} is only known after apply");
            } else {
                assert_eq!(v, prior.get(name), "computed {name} keeps its prior value");
            }
            if !prior.is_null() && self.rules.force_new.contains(&name) {
                let changes = !v.surely_eq(prior.get(name));
                assert_eq!(
                    changes,
                    replace_paths.contains(&attr_path(name)),
                    "requires_replace must name {name} exactly when it changes or may change: {:?} -> {v:?}",
                    prior.get(name)
                );
            }
        }
        for (name, _, _) in &self.schema.blocks {
            assert_eq!(
                planned.get(name),
                config.get(name),
                "block {name} is planned as configured"
            );
        }
        if !prior.is_null() {
            let inputs_same = self
                .schema
                .attrs
                .iter()
                .filter(|a| !a.computed || a.optional)
                .all(|a| planned.get(&a.name).surely_eq(prior.get(&a.name)))
                && self
                    .schema
                    .blocks
                    .iter()
                    .all(|(name, _, _)| planned.get(name).surely_eq(prior.get(name)));
            // An LXD token that can no longer be used is replaced with trigger "always",
            // inputs unchanged (the replacement is forced by `status`).
            let spent = prior.get("status").as_str().is_some_and(|s| s != "pending")
                && prior.get("trigger").as_str() == Some("always");
            if inputs_same && spent {
                assert_eq!(p.requires_replace, vec![attr_path("status")]);
            }
            if inputs_same && !spent {
                assert!(
                    p.requires_replace.is_empty(),
                    "nothing changes, nothing to replace"
                );
                assert_eq!(
                    planned, prior,
                    "nothing configured changes, so nothing is planned"
                );
            }
        }
        action
    }

    /// The invalid attribute paths of `config` are reported, each by an error naming it, and
    /// nothing else is; returns whether the configuration is valid.
    pub async fn validate(&mut self, cfg: &Cfg) -> bool {
        let diags = self.front.validate(self.rules.type_name, &cfg.plan).await;
        self.record(&diags);
        let reported: BTreeSet<Vec<Step>> = errors(&diags).iter().map(|d| d.path.clone()).collect();
        assert_eq!(
            reported, cfg.invalid,
            "validation errors must name exactly the invalid attributes of {:?}: {diags:?}",
            cfg.plan
        );
        cfg.invalid.is_empty()
    }

    /// Refreshes the saved state and checks it against what the server events should show.
    pub async fn refresh(&mut self, expect: &Expect) {
        if self.state.is_null() {
            return;
        }
        // Terraform keeps state as JSON and has the provider upgrade it before every refresh.
        let json = serde_json::to_vec(&to_json(&self.state)).expect("JSON");
        let (upgraded, diags) = self.front.upgrade(self.rules.type_name, &json).await;
        self.record(&diags);
        assert!(errors(&diags).is_empty(), "upgrade failed: {diags:?}");
        assert_eq!(
            upgraded, self.state,
            "upgrading the stored state changes nothing"
        );
        let (found, diags) = self.front.read(self.rules.type_name, &self.state).await;
        self.record(&diags);
        assert!(errors(&diags).is_empty(), "refresh failed: {diags:?}");
        assert!(
            !found.has_unknown(),
            "a refreshed object has no unknowns: {found:?}"
        );
        if let Expect::Spent { .. } = expect {
            assert!(
                found.get("status").as_str() != Some("pending"),
                "a spent token is not pending: {found:?}"
            );
            let mut kept = found.clone();
            kept.set("status", self.state.get("status").clone());
            kept.set("consumed_by", self.state.get("consumed_by").clone());
            assert_eq!(kept, self.state, "refresh keeps a spent token's state");
            self.state = found;
            return;
        }
        let wanted = match expect {
            Expect::Spent { .. } => unreachable!("handled above"),
            Expect::Unchanged => self.state.clone(),
            Expect::Gone => Tv::Null,
            Expect::Description(d) => {
                let mut s = self.state.clone();
                s.set("description", Tv::s(d));
                s
            }
        };
        assert_eq!(found, wanted, "refresh after {expect:?}");
        self.state = found;
    }

    /// Plans `cfg` against the (refreshed) state and applies it as Terraform does. Returns
    /// the action of the plan.
    pub async fn plan_and_apply(&mut self, cfg: &Cfg) -> Action {
        let ty = self.rules.type_name;
        let prior = self.state.clone();
        let first = self
            .front
            .plan(
                ty,
                &prior,
                &proposed(&self.schema, &prior, &cfg.plan),
                &cfg.plan,
            )
            .await;
        self.record(&first.diags);
        let action = self.check_plan(&prior, &cfg.plan, &first);
        // A replacement is planned a second time as a create; its plan is what the change shows.
        let shown = if action == Action::Replace {
            let again = self
                .front
                .plan(
                    ty,
                    &Tv::Null,
                    &proposed(&self.schema, &Tv::Null, &cfg.plan),
                    &cfg.plan,
                )
                .await;
            self.record(&again.diags);
            assert_eq!(
                self.check_plan(&Tv::Null, &cfg.plan, &again),
                Action::Create
            );
            again.planned
        } else {
            first.planned.clone()
        };
        if action == Action::NoOp {
            return action;
        }

        // Apply: destroy first for a replacement, then plan again with everything known.
        if action == Action::Replace {
            let (gone, diags) = self
                .front
                .apply(ty, &self.state, &Tv::Null, &cfg.apply)
                .await;
            self.record(&diags);
            assert!(errors(&diags).is_empty(), "destroy failed: {diags:?}");
            assert_eq!(gone, Tv::Null, "a destroyed object is null");
            self.state = Tv::Null;
        }
        // Terraform validates the configuration again once its values are known.
        let diags = self.front.validate(ty, &cfg.apply).await;
        self.record(&diags);
        assert!(
            errors(&diags).is_empty(),
            "the known configuration is valid: {diags:?}"
        );
        let prior = self.state.clone();
        let fin = self
            .front
            .plan(
                ty,
                &prior,
                &proposed(&self.schema, &prior, &cfg.apply),
                &cfg.apply,
            )
            .await;
        self.record(&fin.diags);
        let final_action = self.check_plan(&prior, &cfg.apply, &fin);
        let consistent = match action {
            Action::Replace | Action::Create => final_action == Action::Create,
            Action::Update => matches!(final_action, Action::Update | Action::NoOp),
            Action::NoOp => false,
        };
        assert!(
            consistent,
            "Provider produced inconsistent final plan: planned {action:?}, then {final_action:?} with {:?}",
            cfg.apply
        );
        assert!(
            compatible(&shown, &fin.planned),
            "Provider produced inconsistent final plan: {shown:?} then {:?}",
            fin.planned
        );
        if final_action == Action::NoOp {
            return action;
        }
        let (new_state, diags) = self.front.apply(ty, &prior, &fin.planned, &cfg.apply).await;
        self.record(&diags);
        assert!(errors(&diags).is_empty(), "apply failed: {diags:?}");
        assert!(!new_state.is_null(), "apply returned no object");
        assert!(
            !new_state.has_unknown(),
            "Provider returned invalid result object after apply: {new_state:?}"
        );
        assert!(
            compatible(&fin.planned, &new_state),
            "Provider produced inconsistent result after apply: planned {:?}, got {new_state:?}",
            fin.planned
        );
        self.state = new_state;
        action
    }

    /// With nothing changed on the server, a refresh keeps the state and the next plan is
    /// empty; unless the refresh legitimately forgets the object (`after` says what it must
    /// show now), and then the next plan creates it again.
    pub async fn next_plan(&mut self, cfg: &Cfg, after: &Expect) {
        self.refresh(after).await;
        let prior = self.state.clone();
        let p = self
            .front
            .plan(
                self.rules.type_name,
                &prior,
                &proposed(&self.schema, &prior, &cfg.apply),
                &cfg.apply,
            )
            .await;
        self.record(&p.diags);
        let action = self.check_plan(&prior, &cfg.apply, &p);
        if let Expect::Spent { replace } = after {
            let wanted = if *replace {
                Action::Replace
            } else {
                Action::NoOp
            };
            assert_eq!(
                action, wanted,
                "a spent token is replaced exactly with trigger always"
            );
            return;
        }
        if *after == Expect::Gone {
            assert_eq!(
                action,
                Action::Create,
                "a forgotten object is created again"
            );
            return;
        }
        assert_eq!(action, Action::NoOp, "the plan after an apply is empty");
        assert!(p.requires_replace.is_empty());
        assert_eq!(p.planned, prior);
    }

    /// One `terraform apply` of `cfg`, then the next plan, unless validation stops it.
    /// `expect` is what the refresh before it must show; `after` tells, for the state the apply
    /// leaves, what a refresh must show at once.
    pub async fn step(
        &mut self,
        cfg: &Cfg,
        expect: &Expect,
        after: &dyn Fn(&Tv) -> Expect,
    ) -> bool {
        if !self.validate(cfg).await {
            return false;
        }
        self.refresh(expect).await;
        self.plan_and_apply(cfg).await;
        let now = after(&self.state);
        self.next_plan(cfg, &now).await;
        true
    }

    pub fn assert_no_secret(&self, secrets: &BTreeSet<String>) {
        for d in &self.diags {
            for secret in secrets.iter().filter(|s| s.len() >= 8) {
                assert!(
                    !d.summary.contains(secret.as_str()) && !d.detail.contains(secret.as_str()),
                    "a diagnostic carries a token: {:?}",
                    d.summary
                );
            }
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn config(seed: u64, cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

/// One generated attribute: as written at plan time (maybe unknown) and at apply time.
#[derive(Debug, Clone)]
pub struct In {
    pub plan: Tv,
    pub apply: Tv,
}

pub fn known(value: Tv) -> In {
    In {
        plan: value.clone(),
        apply: value,
    }
}

pub fn later(value: Tv) -> In {
    In {
        plan: Tv::Unknown,
        apply: value,
    }
}

pub fn pick(options: &'static [&'static str]) -> impl Strategy<Value = Tv> {
    proptest::sample::select(options).prop_map(Tv::s)
}
