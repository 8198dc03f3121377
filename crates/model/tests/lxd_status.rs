//! The status rules of `lxd_trust_token` (`decide`) against a reference model of an LXD server.
//!
//! Each case is a random interleaving of: our token and other tokens (of the same name or
//! another) being made, consumed by fresh clients, revoked, expiring, swept, pruned after the
//! retention, lost in a restart, and the provider looking (a refresh). The reference knows what
//! really became of our token; the property is that every status the rules claim is true,
//! and that the rules do claim the truth when no other token of that name muddies the trust
//! store.
//!
//! Raise the case count locally with `PROPTEST_CASES=5000 cargo nextest run -p model --test lxd_status`.

use std::collections::BTreeSet;

use model::lxd_trust_token::{
    Baseline, Observation, Operation, ServerToken, Status, Verdict, decide,
};
use proptest::prelude::*;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use time::OffsetDateTime;

const NAME: &str = "mytoken";
/// Our token, made first.
const OURS: usize = 0;

fn instant(minutes: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
        + time::Duration::seconds(1_800_000_000)
        + time::Duration::minutes(minutes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpState {
    Running,
    /// Cancelled and still retained.
    Cancelled,
    Gone,
}

/// What really became of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Truth {
    Unused,
    Consumed(String),
    Revoked,
    Lost,
}

#[derive(Debug, Clone)]
struct Token {
    name: &'static str,
    expires_at: Option<i64>,
    op: OpState,
    truth: Truth,
    /// The step at which it was made.
    made: usize,
}

#[derive(Debug, Clone)]
struct World {
    now: i64,
    step: usize,
    tokens: Vec<Token>,
    /// The trust store: (name, fingerprint).
    store: Vec<(&'static str, String)>,
    next_client: u32,
    /// The step of the last look that saw our token running (its creation counts as one).
    last_running_look: usize,
    /// Whether a same-name token made after that look was consumed since: the documented limit
    /// under which a consumption cannot be told apart.
    blind: bool,
    /// Whether the verdict became final while `blind` held: no claim is checked from then on.
    limited: bool,
    /// The verdict the rules gave at the last look (as the reference predicts its finality).
    final_seen: bool,
}

#[derive(Debug, Clone)]
enum Event {
    Make {
        same_name: bool,
        expiry: Option<i64>,
    },
    Consume(usize),
    Revoke(usize),
    Advance(i64),
    /// The periodic sweep cancels every running token whose expiry has passed.
    Sweep,
    /// Finished operations leave after the retention.
    Prune,
    Restart,
    Look,
}

impl World {
    fn ours_running(&self) -> bool {
        self.tokens[OURS].op == OpState::Running
    }

    fn cancel(&mut self, idx: usize) {
        if self.tokens[idx].op == OpState::Running {
            self.tokens[idx].op = OpState::Cancelled;
        }
    }
}

struct Reference;

impl ReferenceStateMachine for Reference {
    type State = World;
    type Transition = Event;

    fn init_state() -> BoxedStrategy<World> {
        (
            proptest::option::of(1i64..30),
            proptest::collection::vec(proptest::bool::ANY, 0..3),
        )
            .prop_map(|(expiry, older)| {
                // Tokens made before ours (same name or not), then ours.
                let mut tokens: Vec<Token> = older
                    .iter()
                    .map(|same| Token {
                        name: if *same { NAME } else { "other" },
                        expires_at: expiry,
                        op: OpState::Running,
                        truth: Truth::Unused,
                        made: 0,
                    })
                    .collect();
                tokens.insert(
                    OURS,
                    Token {
                        name: NAME,
                        expires_at: expiry,
                        op: OpState::Running,
                        truth: Truth::Unused,
                        made: 0,
                    },
                );
                World {
                    now: 0,
                    step: 1,
                    tokens,
                    store: Vec::new(),
                    next_client: 0,
                    last_running_look: 0,
                    blind: false,
                    limited: false,
                    final_seen: false,
                }
            })
            .boxed()
    }

    fn transitions(state: &World) -> BoxedStrategy<Event> {
        let n = state.tokens.len();
        prop_oneof![
            1 => (proptest::bool::ANY, proptest::option::of(1i64..30))
                .prop_map(|(same_name, expiry)| Event::Make { same_name, expiry }),
            3 => (0..n).prop_map(Event::Consume),
            1 => (0..n).prop_map(Event::Revoke),
            2 => (1i64..20).prop_map(Event::Advance),
            1 => Just(Event::Sweep),
            1 => Just(Event::Prune),
            1 => Just(Event::Restart),
            3 => Just(Event::Look),
        ]
        .boxed()
    }

    fn apply(mut world: World, event: &Event) -> World {
        world.step += 1;
        let now = world.now;
        match event {
            Event::Make { same_name, expiry } => world.tokens.push(Token {
                name: if *same_name { NAME } else { "other" },
                expires_at: expiry.map(|e| now + e),
                op: OpState::Running,
                truth: Truth::Unused,
                made: world.step,
            }),
            Event::Consume(idx) => {
                let idx = *idx;
                if world.tokens[idx].op == OpState::Running {
                    // The token is burnt first; an expired one lets nobody in.
                    world.cancel(idx);
                    let token = &world.tokens[idx];
                    if token.expires_at.is_none_or(|at| at > now) {
                        world.next_client += 1;
                        let fingerprint = format!("{:064x}", world.next_client);
                        let name = token.name;
                        world.tokens[idx].truth = Truth::Consumed(fingerprint.clone());
                        world.store.push((name, fingerprint));
                        if idx != OURS
                            && name == NAME
                            && world.tokens[idx].made > world.last_running_look
                        {
                            world.blind = true;
                        }
                    }
                }
            }
            Event::Revoke(idx) => {
                if world.tokens[*idx].op == OpState::Running {
                    world.cancel(*idx);
                    world.tokens[*idx].truth = Truth::Revoked;
                }
            }
            Event::Advance(minutes) => world.now += minutes,
            Event::Sweep => {
                for idx in 0..world.tokens.len() {
                    if world.tokens[idx].expires_at.is_some_and(|at| at <= now) {
                        world.cancel(idx);
                    }
                }
            }
            Event::Prune => {
                for token in &mut world.tokens {
                    if token.op == OpState::Cancelled {
                        token.op = OpState::Gone;
                    }
                }
            }
            Event::Restart => {
                for token in &mut world.tokens {
                    if token.op == OpState::Running {
                        token.truth = Truth::Lost;
                    }
                    token.op = OpState::Gone;
                }
            }
            Event::Look => {
                if world.ours_running() {
                    world.last_running_look = world.step;
                    world.blind = false;
                } else if !world.final_seen {
                    world.final_seen = true;
                    world.limited = world.blind;
                }
            }
        }
        world
    }
}

/// The provider's side: the verdict and the private record, as it keeps them.
struct Provider {
    verdict: Verdict,
    record: Option<Baseline>,
}

fn observe(world: &World) -> Observation {
    let ours = &world.tokens[OURS];
    Observation {
        operation: match ours.op {
            OpState::Running => Operation::Running(ServerToken {
                operation_id: "op-0".into(),
                name: NAME.into(),
                token: "dG9rZW4=".into(),
                expires_at: ours.expires_at.map(instant),
            }),
            OpState::Cancelled => Operation::Cancelled,
            OpState::Gone => Operation::Gone,
        },
        now: instant(world.now),
        named: world
            .store
            .iter()
            .filter(|(name, _)| *name == NAME)
            .map(|(_, fp)| fp.clone())
            .collect(),
        rivals: world
            .tokens
            .iter()
            .enumerate()
            .filter(|(idx, t)| *idx != OURS && t.name == NAME && t.op == OpState::Running)
            .map(|(idx, _)| format!("op-{idx}"))
            .collect::<BTreeSet<_>>(),
    }
}

impl StateMachineTest for Reference {
    type SystemUnderTest = Provider;
    type Reference = Reference;

    fn init_test(world: &World) -> Provider {
        // The record a create takes: the trust store and the pending tokens of that name.
        let seen = observe(world);
        Provider {
            verdict: Verdict {
                status: Status::Pending,
                consumed_by: None,
            },
            record: Some(Baseline {
                named: seen.named,
                rivals: seen.rivals,
                ..Baseline::default()
            }),
        }
    }

    fn apply(mut provider: Provider, world: &World, event: Event) -> Provider {
        if let Event::Look = event {
            let (verdict, record) = decide(
                &provider.verdict,
                world.tokens[OURS].expires_at.map(instant),
                provider.record.as_ref(),
                &observe(world),
            );
            provider.verdict = verdict;
            provider.record = record;
        }
        provider
    }

    fn check_invariants(provider: &Provider, world: &World) {
        let ours = &world.tokens[OURS];
        let verdict = &provider.verdict;
        assert_eq!(
            verdict.status.is_final(),
            world.final_seen || (verdict.status == Status::Expired),
            "a status is final from the first look that finds the token spent: {verdict:?}"
        );
        assert_eq!(
            verdict.consumed_by.is_some(),
            verdict.status == Status::Consumed
        );
        if world.limited {
            return;
        }
        let expired = ours.expires_at.is_some_and(|at| at <= world.now);
        match verdict.status {
            Status::Pending => assert!(
                !world.final_seen,
                "pending although a look found it spent: {world:?}"
            ),
            Status::Consumed => assert_eq!(
                Some(&ours.truth),
                verdict.consumed_by.clone().map(Truth::Consumed).as_ref(),
                "a consumption claimed without proof: {world:?}"
            ),
            Status::Expired => {
                assert!(expired, "expired before its expiry: {world:?}");
                assert!(
                    !matches!(ours.truth, Truth::Consumed(_)),
                    "a consumed token called expired: {world:?}"
                );
            }
            Status::Revoked => assert!(
                matches!(ours.truth, Truth::Revoked),
                "revoked without a revocation: {world:?}"
            ),
            Status::Unknown => {}
        }
        // Without another token of that name, the rules always find the consumer.
        let alone = world.tokens.iter().skip(1).all(|t| t.name != NAME);
        if alone
            && world.final_seen
            && let Truth::Consumed(fp) = &ours.truth
        {
            assert_eq!(verdict.consumed_by.as_ref(), Some(fp), "{world:?}");
        }
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn status_claims_only_what_the_server_proves(sequential 1..30 => Reference);
}
