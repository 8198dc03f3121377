//! Random sequences of API calls per user, checked against a small reference model:
//! never more than two tokens per user, the secret only in a create response, and a retried
//! create never makes a second token.
//!
//! More cases: `PROPTEST_CASES=10000 cargo nextest run -p fake-oci --test model`.

mod common;

use std::collections::BTreeMap;

use common::{Signer, send};
use fake_oci::{Config, FakeOci, TEST_TENANCY};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Create {
        user: usize,
        description: u8,
        retry: Option<u8>,
    },
    List {
        user: usize,
    },
    Update {
        user: usize,
        pick: usize,
        description: u8,
    },
    Delete {
        user: usize,
        pick: usize,
    },
    Advance {
        seconds: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0..4u8, proptest::option::of(0..3u8)).prop_map(|(user, description, retry)| Op::Create { user, description, retry }),
        2 => (0..2usize).prop_map(|user| Op::List { user }),
        1 => (0..2usize, 0..3usize, 0..4u8).prop_map(|(user, pick, description)| Op::Update { user, pick, description }),
        2 => (0..2usize, 0..3usize).prop_map(|(user, pick)| Op::Delete { user, pick }),
        1 => (0..200u16).prop_map(|seconds| Op::Advance { seconds }),
    ]
}

/// What the reference model expects: per user, the ids and descriptions of live tokens; per
/// (user, retry token), the token the first create made and its body.
#[derive(Default)]
struct Reference {
    tokens: Vec<BTreeMap<String, String>>,
    retries: BTreeMap<(usize, u8), (u8, Option<String>)>,
}

const USERS: [&str; 2] = [
    "ocid1.user.oc1..aaaaaaaapropuser0",
    "ocid1.user.oc1..aaaaaaaapropuser1",
];

async fn run(fake: &FakeOci, signers: &[Signer], ops: Vec<Op>) -> Result<(), TestCaseError> {
    let control = fake.control();
    control.reset();
    let mut model = Reference {
        tokens: vec![BTreeMap::new(), BTreeMap::new()],
        ..Default::default()
    };
    // The fake's clock keeps what earlier cases advanced; requests are signed at its time.
    let state_now = control.state()["now"].as_str().unwrap().to_owned();
    let mut now =
        time::OffsetDateTime::parse(&state_now, &time::format_description::well_known::Rfc3339)
            .unwrap();
    for op in ops {
        match op {
            Op::Create {
                user,
                description,
                retry,
            } => {
                let url = format!(
                    "{}/20160918/users/{}/authTokens",
                    fake.endpoint(),
                    USERS[user]
                );
                let body = format!(r#"{{"description":"d{description}"}}"#);
                let retry_header = retry.map(|r| format!("retry-{r}"));
                let extra: Vec<(&str, &str)> = retry_header
                    .iter()
                    .map(|r| ("opc-retry-token", r.as_str()))
                    .collect();
                let reply = send(&signers[user], "POST", &url, Some(&body), &extra, now).await;
                let remembered = retry.and_then(|r| model.retries.get(&(user, r)).cloned());
                match remembered {
                    Some((first_description, first_id)) if first_description == description => {
                        // A replay: the first answer again, nothing new.
                        match first_id {
                            Some(id) => {
                                prop_assert_eq!(reply.status, 200);
                                prop_assert_eq!(reply.body["id"].as_str(), Some(id.as_str()));
                            }
                            None => prop_assert_eq!(reply.status, 400),
                        }
                    }
                    Some(_) => prop_assert_eq!(reply.status, 409),
                    None if model.tokens[user].len() >= 2 => {
                        prop_assert_eq!(reply.status, 400);
                        prop_assert_eq!(&reply.body["code"], "LimitExceeded");
                    }
                    None => {
                        prop_assert_eq!(reply.status, 200);
                        prop_assert!(reply.body["token"].as_str().is_some_and(|t| !t.is_empty()));
                        let id = reply.body["id"].as_str().unwrap().to_owned();
                        model.tokens[user].insert(id.clone(), format!("d{description}"));
                        if let Some(r) = retry {
                            model.retries.insert((user, r), (description, Some(id)));
                        }
                    }
                }
            }
            Op::List { user } => {
                let url = format!(
                    "{}/20160918/users/{}/authTokens",
                    fake.endpoint(),
                    USERS[user]
                );
                let reply = send(&signers[user], "GET", &url, None, &[], now).await;
                prop_assert_eq!(reply.status, 200);
                let items = reply.body.as_array().unwrap();
                prop_assert!(
                    items.iter().all(|t| t.get("token").is_none()),
                    "a list shows no secret"
                );
                let listed: BTreeMap<String, String> = items
                    .iter()
                    .map(|t| {
                        (
                            t["id"].as_str().unwrap().to_owned(),
                            t["description"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                prop_assert_eq!(&listed, &model.tokens[user]);
            }
            Op::Update {
                user,
                pick,
                description,
            } => {
                let Some(id) = model.tokens[user].keys().nth(pick).cloned() else {
                    continue;
                };
                let url = format!(
                    "{}/20160918/users/{}/authTokens/{id}",
                    fake.endpoint(),
                    USERS[user]
                );
                let reply = send(
                    &signers[user],
                    "PUT",
                    &url,
                    Some(&format!(r#"{{"description":"u{description}"}}"#)),
                    &[],
                    now,
                )
                .await;
                prop_assert_eq!(reply.status, 200);
                prop_assert!(
                    reply.body.get("token").is_none(),
                    "an update shows no secret"
                );
                model.tokens[user].insert(id, format!("u{description}"));
            }
            Op::Delete { user, pick } => {
                let Some(id) = model.tokens[user].keys().nth(pick).cloned() else {
                    continue;
                };
                let url = format!(
                    "{}/20160918/users/{}/authTokens/{id}",
                    fake.endpoint(),
                    USERS[user]
                );
                let reply = send(&signers[user], "DELETE", &url, None, &[], now).await;
                prop_assert_eq!(reply.status, 204);
                model.tokens[user].remove(&id);
            }
            Op::Advance { seconds } => {
                control.advance(std::time::Duration::from_secs(u64::from(seconds)));
                now += time::Duration::seconds(i64::from(seconds));
            }
        }
        let state = control.state();
        for (user, id) in USERS.iter().enumerate() {
            let held = state["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t["user_id"] == *id)
                .count();
            prop_assert!(held <= 2, "user {user} holds {held} tokens");
            prop_assert_eq!(held, model.tokens[user].len());
        }
    }
    Ok(())
}

#[test]
fn random_sequences_match_the_reference_model() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime
        .block_on(FakeOci::start(Config::for_testing()))
        .unwrap();
    let identity = fake.test_identity();
    let signers: Vec<Signer> = USERS
        .iter()
        .map(|user| {
            let fp = fake
                .control()
                .add_user(TEST_TENANCY, user, fake_oci::TEST_PUBLIC_KEY)
                .unwrap();
            Signer::new(TEST_TENANCY, user, &fp, &identity.private_key_pem)
        })
        .collect();
    proptest!(ProptestConfig::with_cases(128), |(ops in proptest::collection::vec(op(), 1..25))| {
        runtime.block_on(run(&fake, &signers, ops))?;
    });
}
