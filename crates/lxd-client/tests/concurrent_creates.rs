//! Creates of the same name that overlap, from callers of one client (resources of one
//! provider) and from an outside client, while a proxy drops, delays or fails the creates of
//! the first. The client must never revoke a token during a create, adopt only the one token
//! that can be its request's, and report every token it may have made.
//!
//! The property runs 100 cases by default; `XTASK_FAULT_CASES` sets ten times as many (what
//! `cargo xtask test --long` sets, 10,000, gives 1,000 cases here); either runs in four shards
//! on their own threads (`support::cases`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_lxd::{Config, FakeLxd};
use lxd_client::{Client, Error, RetryPolicy, Target};
use proptest::prelude::*;
use support::{Fault, Proxy};
use tokio::sync::Notify;

fn retry(deadline: Duration, request_timeout: Duration) -> RetryPolicy {
    RetryPolicy {
        deadline,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(8),
        request_timeout,
        create_attempts: 3,
    }
}

fn no_deletes(fake: &FakeLxd) {
    let deletes: Vec<_> = fake
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert!(deletes.is_empty(), "a create revoked tokens: {deletes:?}");
}

fn pending(fake: &FakeLxd) -> BTreeSet<String> {
    fake.control()
        .pending_tokens()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// Two clients create tokens of the same name; the first one's request reaches the server,
/// which makes its token, and the answer is held while the second makes its own, then lost.
/// The first cannot tell which token is its own: it adopts neither and revokes neither.
#[tokio::test]
async fn a_lost_answer_never_costs_another_client_its_token() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let proxy = Proxy::start(fake.unix_socket());
    let retry = retry(Duration::from_secs(2), Duration::from_millis(500));
    let ours = Arc::new(Client::new(
        Target::Unix(proxy.socket().to_owned()),
        retry.clone(),
    ));
    let other = Client::new(Target::Unix(fake.unix_socket().to_owned()), retry);
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    proxy.fault(Fault::HoldAfter {
        reached: reached.clone(),
        release: release.clone(),
    });
    let create = tokio::spawn({
        let ours = ours.clone();
        async move { ours.create_token("twin", &[]).await }
    });
    reached.notified().await;
    let theirs = other.create_token("twin", &[]).await.unwrap();
    release.notify_one();
    let err = create.await.unwrap().unwrap_err();
    let made = proxy.log().into_iter().find_map(|e| e.made).unwrap();
    let Error::AmbiguousCreate { candidates, .. } = &err else {
        panic!("expected the candidates to be reported: {err}");
    };
    assert_eq!(
        candidates.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([made.clone(), theirs.operation_id.clone()])
    );
    assert!(err.to_string().contains(&made), "{err}");
    no_deletes(&fake);
    assert_eq!(pending(&fake), BTreeSet::from([made, theirs.operation_id]));
}

/// Captured log lines, with a signal for each.
#[derive(Clone, Default)]
struct Lines {
    text: Arc<Mutex<String>>,
    written: Arc<Notify>,
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text
            .lock()
            .unwrap()
            .push_str(&String::from_utf8_lossy(buf));
        self.written.notify_one();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Two resources of one provider with the same name: the first create's answer is lost after
/// the server acted. The second waits for the first to finish, so each adopts or makes its
/// own token and neither revokes anything.
#[tokio::test]
async fn same_name_creates_through_one_client_each_get_their_own_token() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime (what `tokio::test` gives), so every task logs here.
    let _guard = tracing::subscriber::set_default(subscriber);
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let proxy = Proxy::start(fake.unix_socket());
    let client = Arc::new(Client::new(
        Target::Unix(proxy.socket().to_owned()),
        retry(Duration::from_secs(2), Duration::from_millis(500)),
    ));
    let (reached, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    proxy.fault(Fault::HoldAfter {
        reached: reached.clone(),
        release: release.clone(),
    });
    let spawn =
        |client: Arc<Client>| tokio::spawn(async move { client.create_token("twin", &[]).await });
    let first = spawn(client.clone());
    reached.notified().await;
    let mut second = spawn(client.clone());
    // The first create is held; the second either waits for it (and says so) or, without
    // serialisation, makes its token meanwhile.
    let second_done_early = loop {
        tokio::select! {
            done = &mut second => break Some(done),
            () = lines.written.notified() => {
                if lines.text.lock().unwrap().contains("waiting for another create") {
                    break None;
                }
            }
        }
    };
    release.notify_one();
    let first = first.await.unwrap().unwrap();
    let second = match second_done_early {
        Some(done) => done,
        None => second.await,
    }
    .unwrap()
    .unwrap();
    let made: Vec<String> = proxy.log().into_iter().filter_map(|e| e.made).collect();
    assert_eq!(made.len(), 2, "one create each: {made:?}");
    assert_eq!(
        first.operation_id, made[0],
        "the first adopted its own token"
    );
    assert_eq!(second.operation_id, made[1], "the second got its own token");
    no_deletes(&fake);
    assert_eq!(pending(&fake), made.into_iter().collect());
}

/// A proxy answers 502 and forwards the create later: the client does not take the 502 for
/// proof that nothing happened, sends nothing twice, and adopts the token once it appears.
#[tokio::test]
async fn a_5xx_is_not_proof_that_nothing_happened() {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let proxy = Proxy::start(fake.unix_socket());
    let client = Client::new(
        Target::Unix(proxy.socket().to_owned()),
        retry(Duration::from_secs(2), Duration::from_millis(500)),
    );
    proxy.fault(Fault::BadGatewayThenForward(Duration::from_millis(100)));
    let token = client.create_token("late", &[]).await.unwrap();
    // The forwarded request is logged once the fake answered it.
    proxy.idle().await;
    let creates: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect();
    assert_eq!(creates.len(), 1, "the create was sent once: {creates:?}");
    assert_eq!(
        creates[0].made.as_deref(),
        Some(token.operation_id.as_str())
    );
    assert_eq!(pending(&fake), BTreeSet::from([token.operation_id]));
    // A 502 after the server acted at once: the same.
    proxy.fault(Fault::BadGatewayAfter);
    let token = client.create_token("acted", &[]).await.unwrap();
    let made: Vec<String> = proxy.log().into_iter().filter_map(|e| e.made).collect();
    assert_eq!(made.last(), Some(&token.operation_id));
    no_deletes(&fake);
}

#[derive(Debug, Clone)]
enum Schedule {
    DropBefore,
    DropAfter,
    UnavailableBefore,
    BadGatewayAfter,
    Slow,
}

// Margins for a loaded 2-core machine (load 9): with a 150 ms timeout and a slow create reaching
// the server 200 ms after it was sent, the late token came after the client had decided now and
// then, and it adopted the outside client's token of that name (the limit no client can see
// past: a request that acts later than it waits).
const TIMEOUT: Duration = Duration::from_millis(200);

/// How late a slow create reaches the server: after the client gave up on it, but well within
/// the one more request timeout the client waits before it decides (a request that acts later
/// still can leave a token nobody knows).
const LATE: Duration = Duration::from_millis(220);

fn schedule() -> impl Strategy<Value = Schedule> {
    prop_oneof![
        Just(Schedule::DropBefore),
        Just(Schedule::DropAfter),
        Just(Schedule::UnavailableBefore),
        Just(Schedule::BadGatewayAfter),
        Just(Schedule::Slow),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// Each caller's creates, by name index.
    callers: Vec<Vec<u8>>,
    /// The outside client's creates.
    outside: Vec<u8>,
    /// Faults for the callers' creates, in the order the proxy sees them.
    faults: Vec<Schedule>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(proptest::collection::vec(0..2u8, 1..3), 1..4),
        proptest::collection::vec(0..2u8, 0..3),
        proptest::collection::vec(schedule(), 0..4),
    )
        .prop_map(|(callers, outside, faults)| Case {
            callers,
            outside,
            faults,
        })
}

#[derive(Debug)]
enum Outcome {
    Held(String),
    Reported(Vec<String>),
    Failed,
}

async fn run(
    fake: &FakeLxd,
    proxy: &Proxy,
    ours: &Arc<Client>,
    outside: &Arc<Client>,
    case: Case,
) -> Result<(), TestCaseError> {
    for fault in case.faults {
        proxy.fault(match fault {
            Schedule::DropBefore => Fault::DropBefore,
            Schedule::DropAfter => Fault::DropAfter,
            Schedule::UnavailableBefore => Fault::UnavailableBefore,
            Schedule::BadGatewayAfter => Fault::BadGatewayAfter,
            Schedule::Slow => Fault::Slow(LATE),
        });
    }
    let mut tasks = Vec::new();
    for names in case.callers {
        let client = ours.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in names {
                let name = format!("twin-{n}");
                let outcome = match client.create_token(&name, &[]).await {
                    Ok(token) => Outcome::Held(token.operation_id),
                    Err(Error::AmbiguousCreate { candidates, .. }) => Outcome::Reported(candidates),
                    Err(_) => Outcome::Failed,
                };
                outcomes.push((name, outcome));
            }
            outcomes
        }));
    }
    let theirs = {
        let client = outside.clone();
        tokio::spawn(async move {
            let mut made = Vec::new();
            for n in case.outside {
                let name = format!("twin-{n}");
                // Nothing stands between the outside client and the fake: it always gets its answer.
                made.push((name.clone(), client.create_token(&name, &[]).await));
            }
            made
        })
    };
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.unwrap());
    }
    let mut outside_held = BTreeMap::new();
    for (name, made) in theirs.await.unwrap() {
        let token =
            made.map_err(|e| TestCaseError::fail(format!("the outside create failed: {e}")))?;
        outside_held.insert(token.operation_id, name);
    }
    proxy.idle().await;
    fake.control().idle().await;

    let deletes = fake
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .count();
    prop_assert_eq!(deletes, 0, "a create revoked a token");

    let log = proxy.log();
    // What our requests made on the server, by name.
    let made: BTreeMap<String, String> = log
        .iter()
        .filter_map(|e| Some((e.made.clone()?, e.name.clone()?)))
        .collect();
    let unforwarded: BTreeSet<String> = log
        .iter()
        .filter(|e| e.method == "POST" && !e.forwarded)
        .filter_map(|e| e.name.clone())
        .collect();
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (name, outcome) in &outcomes {
        match outcome {
            Outcome::Held(id) => {
                prop_assert!(
                    held.insert(id.clone(), name.clone()).is_none(),
                    "two callers hold {}: {:?}",
                    id,
                    outcomes
                );
                match (made.get(id), outside_held.get(id)) {
                    (Some(made_name), _) => prop_assert_eq!(made_name, name),
                    // The one case no client can tell apart: our request never reached the
                    // server, and the outside client made the only new token of that name.
                    (None, Some(their_name)) => {
                        prop_assert_eq!(their_name, name);
                        prop_assert!(
                            unforwarded.contains(name),
                            "adopted the outside client's {} although our create of {} reached the server",
                            id,
                            name
                        );
                    }
                    (None, None) => {
                        return Err(TestCaseError::fail(format!("{id} was made by nobody")));
                    }
                }
            }
            Outcome::Reported(ids) => {
                prop_assert!(ids.len() > 1, "a sole candidate is adopted");
                reported.extend(ids.iter().cloned());
            }
            Outcome::Failed => {}
        }
    }
    // Nothing is orphaned: every token our requests made is held by one caller or reported.
    for (id, name) in &made {
        prop_assert!(
            held.contains_key(id) || reported.contains(id),
            "our token {} ({}) was neither adopted nor reported: {:?}",
            id,
            name,
            outcomes
        );
    }
    // And every pending token belongs to someone or was reported.
    for id in pending(fake) {
        prop_assert!(
            held.contains_key(&id) || outside_held.contains_key(&id) || reported.contains(&id),
            "{} is pending and nobody knows it",
            id
        );
    }
    Ok(())
}

/// Integration tests have no lib.rs for proptest's default persistence (it warns and neither
/// reads nor writes the regressions); the file beside this one is named explicitly (relative
/// to the package, where tests run).
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "tests/concurrent_creates.proptest-regressions",
            ),
        )),
        ..ProptestConfig::with_cases(cases)
    }
}

#[test]
fn overlapping_same_name_creates_never_take_or_revoke_another_token() {
    let cases = support::cases::from_env(100, 10);
    support::cases::sharded(cases, (cases / 4).clamp(25, 250), overlapping_shard);
}

/// One shard of the property: its own runtime, fake, proxy and clients.
fn overlapping_shard(cases: u32) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (fake, proxy) = runtime.block_on(async {
        let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
        let proxy = Proxy::start(fake.unix_socket());
        (fake, proxy)
    });
    let ours = Arc::new(Client::new(
        Target::Unix(proxy.socket().to_owned()),
        retry(Duration::from_millis(600), TIMEOUT),
    ));
    // Nothing stands between the outside client and the fake: it needs no short timeout.
    let outside = Arc::new(Client::new(
        Target::Unix(fake.unix_socket().to_owned()),
        retry(Duration::from_secs(5), Duration::from_secs(5)),
    ));
    proptest!(config(cases), |(case in case())| {
        runtime.block_on(async {
            fake.control().reset();
            proxy.reset();
            run(&fake, &proxy, &ours, &outside, case).await
        })?;
    });
}

/// A fake behind the test proxy, and a client of the proxy with `retry`.
async fn behind_proxy(retry: RetryPolicy) -> (FakeLxd, Proxy, Client) {
    let fake = FakeLxd::start(Config::for_testing()).await.unwrap();
    let proxy = Proxy::start(fake.unix_socket());
    let ours = Client::new(Target::Unix(proxy.socket().to_owned()), retry);
    (fake, proxy, ours)
}

/// The answer of a create is lost after the server made the token: the client adopts it as
/// soon as the request has had its time to act, not a whole backoff later.
#[tokio::test]
async fn a_sole_candidate_is_adopted_when_the_request_has_had_its_time() {
    let (fake, proxy, ours) = behind_proxy(RetryPolicy {
        deadline: Duration::from_secs(60),
        base_backoff: Duration::from_secs(10),
        max_backoff: Duration::from_secs(10),
        request_timeout: Duration::from_millis(300),
        create_attempts: 3,
    })
    .await;
    proxy.fault(Fault::DropAfter);
    let started = std::time::Instant::now();
    let token = ours.create_token("lost", &[]).await.unwrap();
    // The first look comes before the request's 300 ms are up; the next would be a backoff
    // of at least 10 s later if it were not brought forward.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(pending(&fake), BTreeSet::from([token.operation_id]));
    no_deletes(&fake);
}

/// A create that never reached the server is watched for until the deadline, with looks
/// that back off, and ends with nothing made and nothing revoked.
#[tokio::test]
async fn a_watch_for_nothing_backs_off_until_the_deadline() {
    let (fake, proxy, ours) = behind_proxy(RetryPolicy {
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(1),
        ..retry(Duration::from_millis(1200), Duration::from_millis(50))
    })
    .await;
    proxy.fault(Fault::DropBefore);
    let err = ours.create_token("nothing", &[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { attempts: 1, .. }),
        "{err:?}"
    );
    let looks = proxy
        .log()
        .iter()
        .skip_while(|e| e.method != "POST")
        .filter(|e| e.method == "GET")
        .count();
    // Waits that double from 20 ms (2 × 20, 4 × 20, …, each jittered by up to half) fill
    // 1.2 s in at most 8 looks; a backoff that stayed at 20 ms would take 60 or more.
    assert!((2..=12).contains(&looks), "{looks} looks");
    assert!(pending(&fake).is_empty());
    no_deletes(&fake);
}

/// A proxy gives up on a slow server and answers 502, then the request reaches the server
/// after the client's request timeout: the client keeps watching until its deadline and
/// adopts the token that appears late.
#[tokio::test]
async fn a_token_that_appears_after_the_settle_time_is_still_adopted() {
    let (fake, proxy, ours) =
        behind_proxy(retry(Duration::from_secs(5), Duration::from_millis(100))).await;
    proxy.fault(Fault::BadGatewayThenForward(Duration::from_millis(600)));
    let token = ours.create_token("late", &[]).await.unwrap();
    proxy.idle().await;
    let made = proxy.log().into_iter().find_map(|e| e.made);
    assert_eq!(made.as_deref(), Some(token.operation_id.as_str()));
    assert_eq!(pending(&fake), BTreeSet::from([token.operation_id]));
    no_deletes(&fake);
}
