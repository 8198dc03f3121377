//! Random creates and deletes while fake-oci injects a fault into calls: 500, 503, 429 with
//! retry-after, a connection reset before or after the server acted, a reply slower than the
//! client's timeout. Afterwards the fake holds exactly the tokens the reference model says:
//! none duplicated, none lost, no orphan.
//!
//! 1,000 cases by default; `PROPTEST_CASES=10000` (what `cargo xtask test --long` sets) for more.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fake_oci::faults::{Action, ResetWhen, Rule};
use fake_oci::{Config, FakeOci, TEST_EPOCH};
use oci_client::{Client, Environment, FixedClock, RetryPolicy, Secret, Settings};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Fault {
    Status(u16),
    Throttled,
    ResetBefore,
    ResetAfter,
    Slow,
}

#[derive(Debug, Clone)]
enum Op {
    Create(Option<Fault>),
    Delete(usize, Option<Fault>),
}

fn fault() -> impl Strategy<Value = Option<Fault>> {
    prop_oneof![
        4 => Just(None),
        1 => prop_oneof![Just(500u16), Just(503)].prop_map(|s| Some(Fault::Status(s))),
        1 => Just(Some(Fault::Throttled)),
        1 => Just(Some(Fault::ResetBefore)),
        1 => Just(Some(Fault::ResetAfter)),
        1 => Just(Some(Fault::Slow)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        fault().prop_map(Op::Create),
        (0..3usize, fault()).prop_map(|(pick, f)| Op::Delete(pick, f)),
    ]
}

const TIMEOUT: Duration = Duration::from_millis(40);

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
            delay_ms: TIMEOUT.as_millis() as u64 + 30,
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
    let id = fake.test_identity();
    let settings = Settings {
        tenancy_ocid: Some(id.tenancy),
        user_ocid: Some(id.user),
        fingerprint: Some(id.fingerprint),
        private_key: Some(Secret::new(id.private_key_pem)),
        endpoint: Some(fake.endpoint()),
        ..Settings::default()
    };
    let env = Environment {
        var: &|_| None,
        read_file: &|_| Err(std::io::ErrorKind::NotFound.into()),
        home: None,
    };
    let creds = oci_client::config::resolve(&settings, &env).unwrap();
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
    let mut model: Vec<String> = Vec::new();
    for op in ops {
        match op {
            Op::Create(fault) => {
                if let Some(f) = &fault {
                    control.add_fault(rule("POST", f));
                }
                let result = client.create_auth_token(&user, "d").await;
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
                    model.push(token.id);
                }
            }
            Op::Delete(pick, fault) => {
                let Some(id) = model.get(pick).cloned() else {
                    continue;
                };
                if let Some(f) = &fault {
                    control.add_fault(rule("DELETE", f));
                }
                client
                    .delete_auth_token(&user, &id, None)
                    .await
                    .map_err(|e| TestCaseError::fail(format!("delete failed: {e}")))?;
                model.retain(|t| t != &id);
            }
        }
        // A request the client gave up on may still be running in the fake; let it finish.
        control.idle().await;
        control.clear_faults();
        let state = control.state();
        let held: BTreeSet<String> = state["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        let expected: BTreeSet<String> = model.iter().cloned().collect();
        prop_assert_eq!(
            held,
            expected,
            "the fake's tokens equal the reference model"
        );
    }
    Ok(())
}

#[test]
fn creates_and_deletes_survive_faults() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime
        .block_on(FakeOci::start(Config::for_testing()))
        .unwrap();
    let client = client(&fake);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    proptest!(ProptestConfig::with_cases(cases), |(ops in proptest::collection::vec(op(), 1..5))| {
        runtime.block_on(async {
            fake.control().reset();
            run(&fake, &client, ops).await
        })?;
    });
}
