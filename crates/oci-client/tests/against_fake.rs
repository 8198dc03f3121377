//! Every operation against an in-process fake-oci.

mod common;

use std::sync::Arc;
use std::time::Duration;

use fake_oci::{Config, Delay, FakeOci, TEST_EPOCH};
use oci_client::ExposeSecret;
use oci_client::{Client, Credentials, FixedClock, RetryPolicy};

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_elapsed: Duration::from_secs(2),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(1),
        disabled: false,
    }
}

fn credentials(fake: &FakeOci) -> Credentials {
    common::credentials(fake, &fake.test_identity().user)
}

/// A client of `fake` signing as its test user, with fast retries and a fixed clock.
fn client(fake: &FakeOci) -> Client {
    Client::new(
        &credentials(fake),
        fast_retries(),
        Arc::new(FixedClock(TEST_EPOCH)),
    )
    .unwrap()
}

async fn setup() -> (FakeOci, Client, String) {
    let fake = FakeOci::start(Config::for_testing()).await.unwrap();
    let client = client(&fake);
    let user = fake.test_identity().user;
    (fake, client, user)
}

#[tokio::test]
async fn create_list_get_update_delete() {
    let (fake, client, user) = setup().await;
    let created = client.create_auth_token(&user, "first").await.unwrap();
    assert_eq!(created.lifecycle_state, "ACTIVE");
    assert_eq!(created.time_created, TEST_EPOCH);
    assert!(
        created
            .token
            .as_ref()
            .is_some_and(|t| !t.expose_secret().is_empty())
    );
    assert!(created.etag.is_some());

    let listed = client.list_auth_tokens(&user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].token.is_none());
    let got = client
        .get_auth_token(&user, &created.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.description, "first");
    assert!(
        client
            .get_auth_token(&user, "ocid1.credential.oc1..none")
            .await
            .unwrap()
            .is_none()
    );

    let updated = client
        .update_auth_token(&user, &created.id, "second", created.etag.as_deref())
        .await
        .unwrap();
    assert_eq!(updated.description, "second");
    assert!(updated.token.is_none());
    let stale = client
        .update_auth_token(&user, &created.id, "third", created.etag.as_deref())
        .await
        .unwrap_err();
    assert_eq!(stale.status(), Some(412));

    client
        .delete_auth_token(&user, &created.id, None)
        .await
        .unwrap();
    client
        .delete_auth_token(&user, &created.id, None)
        .await
        .unwrap();
    assert!(client.list_auth_tokens(&user).await.unwrap().is_empty());
    assert_eq!(fake.control().state()["tokens"], serde_json::json!([]));
}

#[tokio::test]
async fn errors_are_typed() {
    let (_fake, client, user) = setup().await;
    client.create_auth_token(&user, "a").await.unwrap();
    client.create_auth_token(&user, "b").await.unwrap();
    match client.create_auth_token(&user, "c").await.unwrap_err() {
        oci_client::Error::Service {
            status,
            code,
            request_id,
            ..
        } => {
            assert_eq!((status, code.as_str()), (400, "LimitExceeded"));
            assert!(!request_id.is_empty());
        }
        other => panic!("{other}"),
    }
    let err = client
        .list_auth_tokens("ocid1.user.oc1..nobody")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn a_wrong_key_or_clock_is_refused() {
    let (fake, _client, user) = setup().await;
    let skewed = Client::new(
        &credentials(&fake),
        fast_retries(),
        Arc::new(FixedClock(TEST_EPOCH + time::Duration::minutes(10))),
    )
    .unwrap();
    let err = skewed.list_auth_tokens(&user).await.unwrap_err();
    assert!(
        matches!(&err, oci_client::Error::Service { status: 401, code, .. } if code == "NotAuthenticated"),
        "{err}"
    );
}

#[tokio::test]
async fn waits_for_active_and_for_deleted() {
    let (fake, client, user) = setup().await;
    fake.control()
        .set_lifecycle(Delay::Reads(3), Delay::Reads(2));
    let created = client.create_auth_token(&user, "slow").await.unwrap();
    assert_eq!(created.lifecycle_state, "CREATING");
    let active = client
        .wait_for_state(&user, &created.id, "ACTIVE", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.lifecycle_state, "ACTIVE");
    client
        .delete_auth_token(&user, &created.id, None)
        .await
        .unwrap();
    assert!(
        client
            .wait_for_state(&user, &created.id, "DELETED", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none()
    );
    fake.control()
        .set_lifecycle(Delay::Manual, Delay::Immediate);
    let stuck = client.create_auth_token(&user, "stuck").await.unwrap();
    let err = client
        .wait_for_state(&user, &stuck.id, "ACTIVE", Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, oci_client::Error::WaitTimeout { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn retries_reuse_one_retry_token() {
    let (fake, client, user) = setup().await;
    let control = fake.control();
    use fake_oci::faults::{Action, ResetWhen, Rule};
    control.add_fault(Rule {
        method: "POST".into(),
        path: "/**".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    control.add_fault(Rule {
        method: "POST".into(),
        path: "/**".into(),
        times: Some(1),
        action: Action::Status {
            status: 503,
            body: None,
            headers: None,
        },
    });
    let created = client.create_auth_token(&user, "once").await.unwrap();
    assert!(
        created.token.is_some(),
        "the replayed reply carries the secret"
    );
    let tokens = control.state()["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 1, "no second token");
    assert_eq!(tokens[0]["id"], created.id.as_str());
    let posts: Vec<_> = control
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 3, "{posts:?}");
}

#[tokio::test]
async fn retry_after_is_honoured_and_the_deadline_holds() {
    let (fake, client, user) = setup().await;
    use fake_oci::faults::{Action, Rule};
    fake.control().add_fault(Rule {
        method: "GET".into(),
        path: "/**".into(),
        times: None,
        action: Action::Status {
            status: 429,
            body: None,
            headers: Some([("retry-after".to_owned(), "0.3".to_owned())].into()),
        },
    });
    let err = client.list_auth_tokens(&user).await.unwrap_err();
    assert!(
        matches!(&err, oci_client::Error::RetriesExhausted { attempts, .. } if *attempts >= 2),
        "{err}"
    );
    assert_eq!(err.status(), Some(429));
    let gets = fake.control().requests().len();
    assert!(gets <= 8, "retry-after spaced the attempts: {gets}");
}

#[tokio::test]
async fn an_untrusted_https_certificate_is_refused() {
    let fake = FakeOci::start(Config {
        tls: true,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    assert!(fake.endpoint().starts_with("https://"));
    let retry = RetryPolicy {
        max_elapsed: Duration::from_millis(100),
        ..fast_retries()
    };
    let client = Client::new(&credentials(&fake), retry, Arc::new(FixedClock(TEST_EPOCH))).unwrap();
    let err = client
        .list_auth_tokens(&fake.test_identity().user)
        .await
        .unwrap_err();
    let text = format!("{err}");
    assert!(
        text.contains("certificate") || text.contains("Certificate"),
        "TLS verification is on: {text}"
    );
    assert!(
        fake.control().requests().is_empty(),
        "nothing reached the API"
    );
}

#[tokio::test]
async fn users_are_created_read_listed_updated_and_deleted() {
    let (fake, client, _) = setup().await;
    let tenancy = fake.test_identity().tenancy;
    let created = client
        .create_user(&tenancy, "alice", "first", Some("a@example.com"))
        .await
        .unwrap();
    assert_eq!(created.name, "alice");
    assert_eq!(created.compartment_id, tenancy);
    assert_eq!(created.description, "first");
    assert_eq!(created.email.as_deref(), Some("a@example.com"));
    assert_eq!(created.lifecycle_state, "ACTIVE");
    assert_eq!(created.time_created, TEST_EPOCH);
    assert!(created.etag.is_some());

    // Only a 404 is "no such user"; another refusal is an error.
    refuse_once(&fake, "GET");
    let refused = client.get_user(&created.id).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    let read = client.get_user(&created.id).await.unwrap().unwrap();
    assert_eq!(read.id, created.id);
    assert_eq!(read.name, "alice");
    let listed = client.list_users(&tenancy).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|u| u.id == created.id && u.name == "alice")
    );

    let updated = client
        .update_user(&created.id, "second", Some("b@example.com"))
        .await
        .unwrap();
    assert_eq!(updated.description, "second");
    assert_eq!(updated.email.as_deref(), Some("b@example.com"));
    assert_eq!(updated.name, "alice");
    let kept = client
        .update_user(&created.id, "third", None)
        .await
        .unwrap();
    assert_eq!(
        kept.email.as_deref(),
        Some("b@example.com"),
        "no email keeps it"
    );

    refuse_once(&fake, "DELETE");
    let refused = client.delete_user(&created.id).await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    client.delete_user(&created.id).await.unwrap();
    assert!(client.get_user(&created.id).await.unwrap().is_none());
    client.delete_user(&created.id).await.unwrap();
    assert!(
        !client
            .list_users(&tenancy)
            .await
            .unwrap()
            .iter()
            .any(|u| u.id == created.id)
    );
    let err = client.get_user("not an ocid").await.unwrap_err();
    assert!(err.to_string().contains("user_id"), "{err}");
}

/// Makes the fake answer the next `method` on a user with a 401.
fn refuse_once(fake: &FakeOci, method: &str) {
    fake.control().add_fault(fake_oci::faults::Rule {
        method: method.into(),
        path: "/20160918/users/*".into(),
        times: Some(1),
        action: fake_oci::faults::Action::Status {
            status: 401,
            body: None,
            headers: None,
        },
    });
}

/// Requests sent one after the other from a task, each as soon as the answer before it was
/// read, on a one-thread runtime (the provider's: each gRPC call is such a task), to a server
/// in its own threads: they share one connection. A second one would be opened and never used
/// (against OCI, a TLS handshake for nothing).
#[test]
fn a_task_sending_requests_back_to_back_keeps_one_connection() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let fake = server
        .block_on(FakeOci::start(Config::for_testing()))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = client(&fake);
    let user = fake.test_identity().user;
    let control = fake.control();
    let before = control.connections();
    let work = runtime.spawn(async move {
        for round in 0..3 {
            let token = client
                .create_auth_token(&user, &format!("round {round}"))
                .await
                .unwrap();
            assert_eq!(client.list_auth_tokens(&user).await.unwrap().len(), 1);
            client
                .delete_auth_token(&user, &token.id, None)
                .await
                .unwrap();
        }
    });
    runtime.block_on(work).unwrap();
    assert_eq!(control.connections() - before, 1);
}
