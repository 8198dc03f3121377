//! SDK-grade retries against fake-oci, driven by its faults and by clocks the test moves
//! (never by sleeping): `409 IncorrectState`/`LockConflict` are retried, a token this client
//! created less than 240 s ago is looked for again when a list leaves it out or answers 404,
//! and a list's 404 is never taken as "the token is gone".

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_oci::faults::{Action, Rule};
use fake_oci::{Config, FakeOci, TEST_EPOCH};
use oci_client::{Client, Clock, Error, RetryPolicy};
use time::OffsetDateTime;

/// A client clock the test moves.
struct ManualClock(Mutex<OffsetDateTime>);

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

impl ManualClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// Retries every millisecond or so, for `max_elapsed` at most: long enough for the attempts a
/// test expects on a busy machine, short where a test waits for the retries to run out.
fn fast_retries(max_elapsed: Duration) -> RetryPolicy {
    RetryPolicy {
        max_elapsed,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(1),
        disabled: false,
    }
}

struct Setup {
    fake: FakeOci,
    client: Client,
    clock: Arc<ManualClock>,
    user: String,
}

impl Setup {
    async fn new() -> Setup {
        let fake = FakeOci::start(Config::for_testing()).await.unwrap();
        let user = fake.test_identity().user;
        let clock = Arc::new(ManualClock(Mutex::new(TEST_EPOCH)));
        let client = Client::new(
            &common::credentials(&fake, &user),
            fast_retries(Duration::from_secs(30)),
            clock.clone(),
        )
        .unwrap();
        Setup {
            fake,
            client,
            clock,
            user,
        }
    }

    /// Another client of the same user and clock whose retries end after `window`.
    fn impatient(&self) -> Client {
        Client::new(
            &common::credentials(&self.fake, &self.user),
            fast_retries(Duration::from_millis(200)),
            self.clock.clone(),
        )
        .unwrap()
    }

    /// Moves both clocks, so signatures stay within the allowed skew.
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.fake.control().advance(by);
    }

    /// The lists of the user's tokens the fake received.
    fn lists(&self) -> usize {
        self.fake
            .control()
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/authTokens"))
            .count()
    }

    fn fault(&self, method: &str, status: u16, code: &str, times: u32) {
        self.fake.control().add_fault(Rule {
            method: method.to_owned(),
            path: "/20160918/users/*/authTokens/**".to_owned(),
            times: Some(times),
            action: Action::Status {
                status,
                body: Some(serde_json::json!({"code": code, "message": "injected"})),
                headers: None,
            },
        });
    }

    fn list_fault(&self, status: u16, times: Option<u32>) {
        self.fake.control().add_fault(Rule {
            method: "GET".to_owned(),
            path: "/20160918/users/*/authTokens".to_owned(),
            times,
            action: Action::Status {
                status,
                body: Some(
                    serde_json::json!({"code": "NotAuthorizedOrNotFound", "message": "injected"}),
                ),
                headers: None,
            },
        });
    }
}

#[tokio::test]
async fn incorrect_state_and_lock_conflict_are_retried_other_conflicts_are_not() {
    let s = Setup::new().await;
    let token = s.client.create_auth_token(&s.user, "d").await.unwrap();
    s.fault("PUT", 409, "IncorrectState", 2);
    let updated = s
        .client
        .update_auth_token(&s.user, &token.id, "d2", None)
        .await
        .unwrap();
    assert_eq!(updated.description, "d2");
    let puts = |s: &Setup| {
        s.fake
            .control()
            .requests()
            .iter()
            .filter(|r| r.method == "PUT")
            .count()
    };
    assert_eq!(puts(&s), 3, "two 409s, then the update");

    s.fault("DELETE", 409, "LockConflict", 1);
    s.client
        .delete_auth_token(&s.user, &token.id, None)
        .await
        .unwrap();
    assert_eq!(s.fake.control().state()["tokens"], serde_json::json!([]));

    let token = s.client.create_auth_token(&s.user, "d").await.unwrap();
    s.fault("PUT", 409, "Conflict", 1);
    let err = s
        .client
        .update_auth_token(&s.user, &token.id, "d3", None)
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("Conflict")));
    assert_eq!(puts(&s), 4, "a plain Conflict is sent once");

    // Retried only within the window: an IncorrectState that never ends gives up.
    s.fault("PUT", 409, "IncorrectState", 10_000);
    let err = s
        .impatient()
        .update_auth_token(&s.user, &token.id, "d4", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RetriesExhausted { .. }), "{err:?}");
    assert_eq!(err.code(), Some("IncorrectState"));
}

#[tokio::test]
async fn a_new_token_missing_from_lists_is_looked_for_again_within_240_s() {
    let s = Setup::new().await;
    s.fake.control().set_list_lag(2);
    let token = s.client.create_auth_token(&s.user, "late").await.unwrap();
    s.advance(Duration::from_secs(230));
    let found = s.client.get_auth_token(&s.user, &token.id).await.unwrap();
    assert_eq!(found.map(|t| t.id), Some(token.id.clone()));
    assert_eq!(s.lists(), 3, "two lists without it, then the one with it");
}

#[tokio::test]
async fn a_later_create_does_not_forget_an_earlier_one_within_240_s() {
    let s = Setup::new().await;
    s.fake.control().set_list_lag(2);
    let first = s.client.create_auth_token(&s.user, "first").await.unwrap();
    s.advance(Duration::from_secs(100));
    s.client.create_auth_token(&s.user, "second").await.unwrap();
    s.advance(Duration::from_secs(100));
    let found = s.client.get_auth_token(&s.user, &first.id).await.unwrap();
    assert_eq!(found.map(|t| t.id), Some(first.id.clone()));
    assert_eq!(s.lists(), 3, "two lists without it, then the one with it");
}

#[tokio::test]
async fn after_240_s_a_token_missing_from_the_list_is_gone() {
    let s = Setup::new().await;
    s.fake.control().set_list_lag(2);
    let token = s.client.create_auth_token(&s.user, "late").await.unwrap();
    s.advance(Duration::from_secs(240));
    let found = s.client.get_auth_token(&s.user, &token.id).await.unwrap();
    assert!(found.is_none());
    assert_eq!(s.lists(), 1, "looked once");
}

#[tokio::test]
async fn a_token_this_client_did_not_create_is_not_waited_for() {
    let s = Setup::new().await;
    let other = Client::new(
        &common::credentials(&s.fake, &s.user),
        fast_retries(Duration::from_secs(30)),
        s.clock.clone(),
    )
    .unwrap();
    s.fake.control().set_list_lag(1);
    let token = other.create_auth_token(&s.user, "elsewhere").await.unwrap();
    assert!(
        s.client
            .get_auth_token(&s.user, &token.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.lists(), 1);
}

#[tokio::test]
async fn a_deleted_token_is_not_waited_for() {
    let s = Setup::new().await;
    let token = s.client.create_auth_token(&s.user, "d").await.unwrap();
    s.client
        .delete_auth_token(&s.user, &token.id, None)
        .await
        .unwrap();
    let gone = s
        .client
        .wait_for_state(&s.user, &token.id, "DELETED", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(gone.is_none());
    assert_eq!(s.lists(), 1);
}

#[tokio::test]
async fn a_list_404_within_the_window_is_retried() {
    let s = Setup::new().await;
    let token = s.client.create_auth_token(&s.user, "d").await.unwrap();
    s.list_fault(404, Some(2));
    let found = s.client.get_auth_token(&s.user, &token.id).await.unwrap();
    assert_eq!(found.map(|t| t.id), Some(token.id));
    assert_eq!(s.lists(), 3);
}

#[tokio::test]
async fn a_list_404_is_an_error_never_a_removal() {
    let s = Setup::new().await;
    let token = s.client.create_auth_token(&s.user, "d").await.unwrap();
    s.advance(Duration::from_secs(241));
    s.list_fault(404, None);
    let err = s
        .client
        .get_auth_token(&s.user, &token.id)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(s.lists(), 1, "a 404 outside the window is not retried");
    let err = s.client.list_auth_tokens(&s.user).await.unwrap_err();
    assert_eq!(err.status(), Some(404));

    // Within the window, a 404 that never ends is an error too once the retries run out.
    let impatient = s.impatient();
    let young = impatient.create_auth_token(&s.user, "young").await.unwrap();
    let err = impatient
        .get_auth_token(&s.user, &young.id)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404), "{err:?}");
}

#[tokio::test]
async fn a_new_token_never_listed_is_an_error_not_a_removal() {
    let s = Setup::new().await;
    s.fake.control().set_list_lag(u32::MAX);
    let impatient = s.impatient();
    let token = impatient.create_auth_token(&s.user, "never").await.unwrap();
    let err = impatient
        .get_auth_token(&s.user, &token.id)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotYetListed { .. }), "{err:?}");
    assert!(err.to_string().contains(&token.id), "{err}");
}
