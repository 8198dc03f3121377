//! Property test: random interleavings of create / list / revoke / consume / advance / restart
//! on the fake's state machine, checked against a small reference model of token lives.

use fake_lxd::state::{Caller, CertificatesPost, Profile, State, Status, token_string};
use proptest::prelude::*;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone)]
enum Step {
    Create,
    List,
    Revoke(usize),
    Consume(usize),
    Advance(u16),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Create),
        2 => Just(Step::List),
        2 => any::<usize>().prop_map(Step::Revoke),
        3 => any::<usize>().prop_map(Step::Consume),
        2 => (0u16..90).prop_map(Step::Advance),
        1 => Just(Step::Restart),
    ]
}

/// What the model knows about a token: its operation, token string, expiry and whether it was
/// used up (consumed, revoked or lost in a restart).
struct Token {
    id: String,
    text: String,
    expires: Option<OffsetDateTime>,
    dead: bool,
}

fn run(profile: Profile, expiry: Option<&str>, steps: &[Step]) -> Result<(), TestCaseError> {
    let mut now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_454);
    let mut state = State::new(profile, 7, "127.0.0.1:8443".into(), "ab".repeat(32), now);
    let mut config = std::collections::BTreeMap::from([(
        "core.https_address".to_owned(),
        "127.0.0.1:8443".to_owned(),
    )]);
    if let Some(e) = expiry {
        config.insert("core.remote_token_expiry".to_owned(), e.to_owned());
    }
    state
        .set_config(config, false)
        .map_err(|e| TestCaseError::fail(e.text))?;
    let mut tokens: Vec<Token> = Vec::new();
    let mut clients = 0u32;
    for (n, step) in steps.iter().enumerate() {
        state.tick(now);
        match step {
            Step::Create => {
                let req = CertificatesPost {
                    name: format!("t{n}"),
                    kind: "client".into(),
                    token: true,
                    ..Default::default()
                };
                let op = state
                    .create_token(req, now)
                    .map_err(|e| TestCaseError::fail(e.text))?;
                let text = token_string(&op, profile)
                    .ok_or_else(|| TestCaseError::fail("no token string"))?;
                let expires = op.token.as_ref().and_then(|t| t.expires_at);
                tokens.push(Token {
                    id: op.id,
                    text,
                    expires,
                    dead: false,
                });
            }
            Step::List => {
                for op in state.operations().filter(|o| o.status == Status::Running) {
                    if let Some(t) = tokens.iter().find(|t| t.id == op.id) {
                        prop_assert!(!t.dead, "a used-up token is listed as running: {}", t.id);
                    }
                }
            }
            Step::Revoke(i) if !tokens.is_empty() => {
                let len = tokens.len();
                let t = &mut tokens[i % len];
                let result = state.cancel(&t.id, now);
                if t.dead {
                    prop_assert!(result.is_err(), "a used-up token was revoked again");
                } else if t.expires.is_none_or(|e| e > now) {
                    prop_assert!(
                        result.is_ok(),
                        "a live token could not be revoked: {:?}",
                        result.err().map(|e| e.text)
                    );
                }
                t.dead = true;
            }
            Step::Consume(i) if !tokens.is_empty() => {
                let len = tokens.len();
                let t = &mut tokens[i % len];
                clients += 1;
                let caller = Caller {
                    local: false,
                    cert: Some((format!("{clients:064x}"), format!("pem {clients}"))),
                };
                let body = match profile {
                    Profile::V5_0 => CertificatesPost {
                        kind: "client".into(),
                        password: t.text.clone(),
                        ..Default::default()
                    },
                    Profile::V6 => CertificatesPost {
                        kind: "client".into(),
                        trust_token: Some(t.text.clone()),
                        ..Default::default()
                    },
                    // Incus ignores `password`: sent along, it changes nothing.
                    Profile::Incus6_0 => CertificatesPost {
                        kind: String::new(),
                        password: t.text.clone(),
                        trust_token: Some(t.text.clone()),
                        ..Default::default()
                    },
                };
                let result = state.consume(&caller, &body, now);
                let usable = !t.dead && t.expires.is_none_or(|e| e > now);
                prop_assert_eq!(
                    result.is_ok(),
                    usable,
                    "consume of {} (dead {}, expires {:?}, now {})",
                    t.id,
                    t.dead,
                    t.expires,
                    now
                );
                if let Ok(c) = result {
                    prop_assert!(
                        state
                            .certificates
                            .iter()
                            .any(|c2| c2.fingerprint == c.fingerprint)
                    );
                }
                t.dead = true;
            }
            Step::Advance(s) => now += Duration::seconds(i64::from(*s)),
            Step::Restart => {
                state.restart(now);
                for t in &mut tokens {
                    t.dead = true;
                }
            }
            Step::Revoke(_) | Step::Consume(_) => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn tokens_follow_the_reference_model_5_0(steps in proptest::collection::vec(step(), 1..40), expiry in prop_oneof![Just(None), Just(Some("30S")), Just(Some("0M")), Just(Some("2M"))]) {
        run(Profile::V5_0, expiry, &steps)?;
    }

    #[test]
    fn tokens_follow_the_reference_model_6(steps in proptest::collection::vec(step(), 1..40), expiry in prop_oneof![Just(None), Just(Some("30S")), Just(Some("2M"))]) {
        run(Profile::V6, expiry, &steps)?;
    }

    #[test]
    fn tokens_follow_the_reference_model_incus_6_0(steps in proptest::collection::vec(step(), 1..40), expiry in prop_oneof![Just(None), Just(Some("30S")), Just(Some("0M")), Just(Some("2M"))]) {
        run(Profile::Incus6_0, expiry, &steps)?;
    }
}
