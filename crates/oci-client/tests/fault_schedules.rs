//! Random creates, updates and deletes while fake-oci injects up to three faults into the
//! attempts of each call: 500, 503, 429 with retry-after, a connection reset before or after
//! the server acted, a reply slower than the client's timeout. After every operation the fake
//! holds exactly the tokens (and descriptions) the reference model says: none duplicated, none
//! lost, no orphan.
//!
//! 1,000 cases by default; `XTASK_FAULT_CASES=10000` (what `cargo xtask test --long` sets) for more.
//! (`PROPTEST_CASES`, which proptest applies to every property test, overrides both.)

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fake_oci::faults::{Action, ResetWhen, Rule};
use fake_oci::{Config, FakeOci, TEST_EPOCH};
use oci_client::{Client, FixedClock, RetryPolicy};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    Throttled,
    ResetBefore,
    ResetAfter,
    Slow,
}

/// One operation, and the faults its first attempts meet (in order, one attempt each).
#[derive(Debug, Clone)]
enum Op {
    Create(Vec<Fault>),
    Update(usize, Vec<Fault>),
    Delete(usize, Vec<Fault>),
}

fn one_fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        prop_oneof![Just(500u16), Just(503)].prop_map(Fault::Status),
        Just(Fault::Throttled),
        Just(Fault::ResetBefore),
        Just(Fault::ResetAfter),
        Just(Fault::Slow),
    ]
}

fn faults() -> impl Strategy<Value = Vec<Fault>> {
    prop_oneof![
        2 => Just(Vec::new()),
        3 => proptest::collection::vec(one_fault(), 1..=3),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => faults().prop_map(Op::Create),
        1 => (0..3usize, faults()).prop_map(|(pick, f)| Op::Update(pick, f)),
        2 => (0..3usize, faults()).prop_map(|(pick, f)| Op::Delete(pick, f)),
    ]
}

// Margins for a loaded 2-core machine (load 9): at 25 ms every attempt of a signed create timed
// out for the whole 5 s window now and then, a request merely late under load.
const TIMEOUT: Duration = Duration::from_millis(75);

fn rule(method: &str, fault: &Fault) -> Rule {
    let action = match fault {
        Fault::Status(status) => Action::Status {
            status: *status,
            body: None,
            headers: None,
        },
        Fault::Throttled => Action::Status {
            status: 429,
            body: None,
            headers: Some([("retry-after".to_owned(), "0.001".to_owned())].into()),
        },
        Fault::ResetBefore => Action::Reset {
            reset: ResetWhen::Before,
        },
        Fault::ResetAfter => Action::Reset {
            reset: ResetWhen::After,
        },
        Fault::Slow => Action::Delay {
            delay_ms: TIMEOUT.as_millis() as u64 + 15,
        },
    };
    Rule {
        method: method.into(),
        path: "/20160918/**".into(),
        times: Some(1),
        action,
    }
}

fn client(fake: &FakeOci) -> Client {
    let creds = common::credentials(fake, &fake.test_identity().user);
    let retry = RetryPolicy {
        max_elapsed: Duration::from_secs(5),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        request_timeout: TIMEOUT,
        poll_interval: Duration::from_millis(1),
        disabled: false,
    };
    Client::new(&creds, retry, Arc::new(FixedClock(TEST_EPOCH))).unwrap()
}

async fn run(fake: &FakeOci, client: &Client, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let control = fake.control();
    let user = fake.test_identity().user;
    // The reference model: token id → description, in creation order.
    let mut model: Vec<(String, String)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        let (method, faults) = match &op {
            Op::Create(f) => ("POST", f),
            Op::Update(_, f) => ("PUT", f),
            Op::Delete(_, f) => ("DELETE", f),
        };
        for f in faults {
            control.add_fault(rule(method, f));
        }
        match op {
            Op::Create(_) => {
                let description = format!("d{step}");
                let result = client.create_auth_token(&user, &description).await;
                if model.len() >= 2 {
                    let err = result.expect_err("a third token is refused");
                    prop_assert_eq!(err.status(), Some(400));
                } else {
                    let token =
                        result.map_err(|e| TestCaseError::fail(format!("create failed: {e}")))?;
                    prop_assert!(
                        token.token.is_some(),
                        "the create reply (or its replay) carries the secret"
                    );
                    prop_assert_eq!(&token.description, &description);
                    model.push((token.id, description));
                }
            }
            Op::Update(pick, _) => {
                let Some((id, _)) = model.get(pick).cloned() else {
                    continue;
                };
                let description = format!("u{step}");
                let token = client
                    .update_auth_token(&user, &id, &description, None)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("update failed: {e}")))?;
                prop_assert_eq!(&token.description, &description);
                model[pick].1 = description;
            }
            Op::Delete(pick, _) => {
                let Some((id, _)) = model.get(pick).cloned() else {
                    continue;
                };
                client
                    .delete_auth_token(&user, &id, None)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("delete failed: {e}")))?;
                model.remove(pick);
            }
        }
        // A request the client gave up on may still be running in the fake; let it finish.
        control.idle().await;
        control.clear_faults();
        let state = control.state();
        let held: BTreeMap<String, String> = state["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_owned(),
                    t["description"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: BTreeMap<String, String> = model.iter().cloned().collect();
        prop_assert_eq!(
            held,
            expected,
            "the fake's tokens equal the reference model"
        );
    }
    Ok(())
}

#[test]
fn creates_updates_and_deletes_survive_faults() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime
        .block_on(FakeOci::start(Config::for_testing()))
        .unwrap();
    let client = client(&fake);
    let cases = std::env::var("XTASK_FAULT_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    let ran = std::sync::atomic::AtomicU32::new(0);
    // Integration tests have no lib.rs for proptest's default persistence; failures go to the
    // crate's `proptest-regressions/` directory (relative to the package, where tests run).
    let config = ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/fault_schedules.txt",
            ),
        )),
        ..ProptestConfig::with_cases(cases)
    };
    proptest!(config, |(ops in proptest::collection::vec(op(), 1..6))| {
        ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(async {
            fake.control().reset();
            run(&fake, &client, ops).await
        })?;
    });
    let ran = ran.into_inner();
    eprintln!("fault schedules: {ran} cases");
    // `PROPTEST_CASES` (which `cargo xtask mutants` sets) overrides the count.
    let expected = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    assert!(ran >= expected, "ran {ran} of {expected} cases");
}
