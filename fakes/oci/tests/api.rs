//! The Identity auth-token API of the fake, driven over HTTP with signed requests.

mod common;

use common::{Signer, send, send_raw, tokens_url};
use fake_oci::faults::{Action, ResetWhen, Rule};
use fake_oci::{Config, Delay, FakeOci, TEST_EPOCH, TEST_USER};

async fn fake() -> (FakeOci, Signer) {
    let fake = FakeOci::start(Config::for_testing()).await.unwrap();
    let signer = Signer::for_fake(&fake);
    (fake, signer)
}

fn token_url(fake: &FakeOci, id: &str) -> String {
    format!("{}/{id}", tokens_url(fake, TEST_USER))
}

#[tokio::test]
async fn full_lifecycle() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    let created = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description": "ci token"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let token = &created.body;
    assert!(
        token["id"]
            .as_str()
            .unwrap()
            .starts_with("ocid1.credential.oc1..")
    );
    assert_eq!(token["userId"], TEST_USER);
    assert_eq!(token["description"], "ci token");
    assert_eq!(token["lifecycleState"], "ACTIVE");
    assert_eq!(token["timeCreated"], "2026-01-01T00:00:00.000Z");
    assert!(token["timeExpires"].is_null());
    assert!(token["inactiveStatus"].is_null());
    let secret = token["token"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 20);
    assert!(created.headers.contains_key("etag"));
    assert!(created.headers.contains_key("opc-request-id"));

    let listed = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(listed.status, 200);
    let items = listed.body.as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["userId"], TEST_USER);
    assert!(
        items[0].get("token").is_none(),
        "a list never shows the secret"
    );
    assert!(!listed.body.to_string().contains(&secret));

    let id = token["id"].as_str().unwrap();
    let updated = send(
        &signer,
        "PUT",
        &token_url(&fake, id),
        Some(r#"{"description":"renamed"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["description"], "renamed");
    assert!(updated.body.get("token").is_none());

    let deleted = send(
        &signer,
        "DELETE",
        &token_url(&fake, id),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(deleted.status, 204);
    let listed = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(listed.body, serde_json::json!([]));
    let again = send(
        &signer,
        "DELETE",
        &token_url(&fake, id),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body["code"], "NotAuthorizedOrNotFound");
}

#[tokio::test]
async fn at_most_two_tokens_per_user() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    for n in 0..2 {
        let r = send(
            &signer,
            "POST",
            &url,
            Some(&format!(r#"{{"description":"t{n}"}}"#)),
            &[],
            TEST_EPOCH,
        )
        .await;
        assert_eq!(r.status, 200);
    }
    let third = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"t3"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(third.status, 400);
    assert_eq!(third.body["code"], "LimitExceeded");
    assert!(third.headers.contains_key("opc-request-id"));
    assert_eq!(
        fake.control().state()["tokens"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn errors_use_the_oci_envelope() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    let cases: [(&str, &str, Option<&str>, u16, &str); 6] = [
        ("POST", &url, Some("{bad json"), 400, "InvalidParameter"),
        (
            "POST",
            &url,
            Some(r#"{"description": 5}"#),
            400,
            "InvalidParameter",
        ),
        ("POST", &url, Some(r#"{}"#), 400, "InvalidParameter"),
        (
            "GET",
            &tokens_url(&fake, "ocid1.user.oc1..nobody"),
            None,
            404,
            "NotAuthorizedOrNotFound",
        ),
        (
            "PUT",
            &token_url(&fake, "ocid1.credential.oc1..nothing"),
            Some("{}"),
            404,
            "NotAuthorizedOrNotFound",
        ),
        (
            "DELETE",
            &token_url(&fake, "ocid1.credential.oc1..nothing"),
            None,
            404,
            "NotAuthorizedOrNotFound",
        ),
    ];
    for (method, url, body, status, code) in cases {
        let r = send(&signer, method, url, body, &[], TEST_EPOCH).await;
        assert_eq!(
            (r.status, r.body["code"].as_str().unwrap()),
            (status, code),
            "{method} {url} {body:?}"
        );
        assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // An empty description is allowed.
    let r = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description": ""}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        fake.control().state()["tokens"].as_array().unwrap().len(),
        1,
        "bad requests changed nothing"
    );
}

#[tokio::test]
async fn bad_signatures_are_refused_with_401() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    let body = br#"{"description":"x"}"#.to_vec();
    let not_authenticated =
        |r: &common::Reply| r.status == 401 && r.body["code"] == "NotAuthenticated";

    // No signature at all.
    let r = send_raw("GET", &url, Vec::new(), &[], &[]).await;
    assert!(not_authenticated(&r), "{}", r.body);

    // Signed with a key the user does not have.
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    let pem =
        rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&other, rsa::pkcs8::LineEnding::LF).unwrap();
    let id = fake.test_identity();
    let wrong = Signer::new(&id.tenancy, &id.user, &id.fingerprint, &pem);
    let r = send(
        &wrong,
        "POST",
        &url,
        Some("{\"description\":\"x\"}"),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert!(not_authenticated(&r), "wrong key: {}", r.body);

    // A tampered body.
    let headers = signer.headers("POST", &url, &body, TEST_EPOCH);
    let r = send_raw(
        "POST",
        &url,
        br#"{"description":"y"}"#.to_vec(),
        &headers,
        &[],
    )
    .await;
    assert!(not_authenticated(&r), "tampered body: {}", r.body);

    // A stale date, and one from the future.
    for skew in [time::Duration::minutes(-6), time::Duration::minutes(6)] {
        let r = send(&signer, "GET", &url, None, &[], TEST_EPOCH + skew).await;
        assert!(not_authenticated(&r), "skew {skew}: {}", r.body);
    }
    // Within five minutes is fine.
    let r = send(
        &signer,
        "GET",
        &url,
        None,
        &[],
        TEST_EPOCH + time::Duration::minutes(4),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        fake.control().state()["tokens"].as_array().unwrap().len(),
        0
    );
}

#[tokio::test]
async fn retry_token_replays_the_first_create() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    let body = Some(r#"{"description":"retried"}"#);
    let first = send(
        &signer,
        "POST",
        &url,
        body,
        &[("opc-retry-token", "abc123")],
        TEST_EPOCH,
    )
    .await;
    let second = send(
        &signer,
        "POST",
        &url,
        body,
        &[("opc-retry-token", "abc123")],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(
        first.body, second.body,
        "the replay is the first response, secret included"
    );
    assert_eq!(
        first.headers["etag"], second.headers["etag"],
        "and carries the token's etag"
    );
    assert_eq!(
        fake.control().state()["tokens"].as_array().unwrap().len(),
        1
    );
    let other = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"other"}"#),
        &[("opc-retry-token", "abc123")],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(other.status, 409);
    assert_eq!(other.body["code"], "InvalidatedRetryToken");
    assert_eq!(
        fake.control().state()["tokens"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn if_match_guards_update_and_delete() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    let created = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"a"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    let id = created.body["id"].as_str().unwrap();
    let etag = created.headers["etag"].to_str().unwrap().to_owned();
    let stale = send(
        &signer,
        "PUT",
        &token_url(&fake, id),
        Some(r#"{"description":"b"}"#),
        &[("if-match", "nope")],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(
        (stale.status, stale.body["code"].as_str().unwrap()),
        (412, "NoEtagMatch")
    );
    let fresh = send(
        &signer,
        "PUT",
        &token_url(&fake, id),
        Some(r#"{"description":"b"}"#),
        &[("if-match", &etag)],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(fresh.status, 200);
    let new_etag = fresh.headers["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let r = send(
        &signer,
        "DELETE",
        &token_url(&fake, id),
        None,
        &[("if-match", &etag)],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(r.status, 412);
    let r = send(
        &signer,
        "DELETE",
        &token_url(&fake, id),
        None,
        &[("if-match", &new_etag)],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn lifecycles_follow_reads_time_and_pokes() {
    let (fake, signer) = fake().await;
    let control = fake.control();
    let url = tokens_url(&fake, TEST_USER);
    control.set_lifecycle(Delay::Reads(2), Delay::Seconds(30.0));
    let created = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"slow"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(created.body["lifecycleState"], "CREATING");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let state_of =
        |reply: &common::Reply| reply.body[0]["lifecycleState"].as_str().unwrap().to_owned();
    let first = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(state_of(&first), "CREATING");
    let second = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(state_of(&second), "ACTIVE");

    let r = send(
        &signer,
        "DELETE",
        &token_url(&fake, id.as_str()),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(r.status, 204);
    let listed = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(state_of(&listed), "DELETING");
    control.advance(std::time::Duration::from_secs(29));
    let listed = send(
        &signer,
        "GET",
        &url,
        None,
        &[],
        TEST_EPOCH + time::Duration::seconds(29),
    )
    .await;
    assert_eq!(state_of(&listed), "DELETING");
    control.advance(std::time::Duration::from_secs(1));
    let listed = send(
        &signer,
        "GET",
        &url,
        None,
        &[],
        TEST_EPOCH + time::Duration::seconds(30),
    )
    .await;
    assert_eq!(listed.body, serde_json::json!([]));

    control.set_lifecycle(Delay::Manual, Delay::Immediate);
    let now = TEST_EPOCH + time::Duration::seconds(30);
    send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"a"}"#),
        &[],
        now,
    )
    .await;
    send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"b"}"#),
        &[],
        now,
    )
    .await;
    assert_eq!(control.poke(false), 1);
    let listed = send(&signer, "GET", &url, None, &[], now).await;
    let states: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["lifecycleState"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ACTIVE", "CREATING"]);
    assert_eq!(control.poke(true), 1);
}

#[tokio::test]
async fn tokens_expire_when_told_to() {
    let (fake, signer) = fake().await;
    fake.control()
        .set_token_lifetime(Some(std::time::Duration::from_secs(3600)));
    let r = send(
        &signer,
        "POST",
        &tokens_url(&fake, TEST_USER),
        Some(r#"{"description":"x"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(r.body["timeExpires"], "2026-01-01T01:00:00.000Z");
}

#[tokio::test]
async fn faults_are_injected_per_route() {
    let (fake, signer) = fake().await;
    let control = fake.control();
    let url = tokens_url(&fake, TEST_USER);
    control.add_fault(Rule {
        method: "POST".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: Some(1),
        action: Action::Status {
            status: 429,
            body: None,
            headers: Some([("retry-after".to_owned(), "1".to_owned())].into()),
        },
    });
    let r = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"x"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(
        (r.status, r.body["code"].as_str().unwrap()),
        (429, "TooManyRequests")
    );
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(control.state()["tokens"].as_array().unwrap().len(), 0);

    // Reset after: the token exists, but the client got no answer.
    control.add_fault(Rule {
        method: "POST".into(),
        path: "/**".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let body = br#"{"description":"lost reply"}"#.to_vec();
    let headers = signer.headers("POST", &url, &body, TEST_EPOCH);
    let client = reqwest::Client::new();
    let mut req = client.post(&url).body(body);
    for (n, v) in &headers {
        if n != "host" && n != "content-length" {
            req = req.header(n, v);
        }
    }
    assert!(req.send().await.is_err(), "the connection is dropped");
    assert_eq!(control.state()["tokens"].as_array().unwrap().len(), 1);

    // Reset before: nothing happens.
    control.add_fault(Rule {
        method: "*".into(),
        path: "/**".into(),
        times: None,
        action: Action::Reset {
            reset: ResetWhen::Before,
        },
    });
    let client = reqwest::Client::new();
    assert!(client.get(&url).send().await.is_err());
    control.clear_faults();
    let log = control.requests();
    assert_eq!(
        log.iter().filter(|r| r.status.is_none()).count(),
        2,
        "{log:?}"
    );
    assert_eq!(log[0].status, Some(429));
}

#[tokio::test]
async fn trailing_slash_and_unknown_paths() {
    let (fake, signer) = fake().await;
    let url = format!("{}/", tokens_url(&fake, TEST_USER));
    let r = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(r.status, 200);
    let r = send(
        &signer,
        "GET",
        &format!("{}/20160918/groups", fake.endpoint()),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn the_control_api_answers_over_http() {
    let (fake, signer) = fake().await;
    let client = reqwest::Client::new();
    let control = fake.control_url();
    let token = fake.control_token();
    send(
        &signer,
        "POST",
        &tokens_url(&fake, TEST_USER),
        Some(r#"{"description":"x"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    let state: serde_json::Value = client
        .get(format!("{control}/_fake/state"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["tokens"].as_array().unwrap().len(), 1);
    let r = client
        .post(format!("{control}/_fake/clock/advance"))
        .bearer_auth(token)
        .json(&serde_json::json!({"seconds": 90}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let state: serde_json::Value = client
        .get(format!("{control}/_fake/state"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["now"], "2026-01-01T00:01:30.000Z");
    client
        .post(format!("{control}/_fake/reset"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let state: serde_json::Value = client
        .get(format!("{control}/_fake/state"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["tokens"], serde_json::json!([]));
    // The control API is not on the API listener.
    let r = client
        .get(format!("{}/_fake/state", fake.endpoint()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn the_control_api_refuses_requests_without_its_token() {
    let (fake, signer) = fake().await;
    send(
        &signer,
        "POST",
        &tokens_url(&fake, TEST_USER),
        Some(r#"{"description":"x"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/_fake/state", fake.control_url());
    let token = fake.control_token();
    let last = if token.ends_with('0') { "1" } else { "0" };
    let wrong = format!("{}{last}", &token[..token.len() - 1]);
    let longer = format!("{token}0");
    for request in [
        client.get(&url),
        client.get(&url).bearer_auth(&wrong),
        client.get(&url).bearer_auth(&longer),
        client.get(&url).bearer_auth(""),
        client.get(&url).basic_auth("user", Some(token)),
        client.post(format!("{}/_fake/reset", fake.control_url())),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let body = r.text().await.unwrap();
        assert!(!body.contains("tokens"), "{body}");
    }
    assert_eq!(
        fake.control().state()["tokens"].as_array().unwrap().len(),
        1,
        "the refused reset changed nothing"
    );
    let r = client
        .get(&url)
        .bearer_auth(fake.control_token())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_control_listener_refuses_non_loopback_addresses_unless_forced() {
    let refused = FakeOci::start(Config {
        control: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        ..Config::for_testing()
    })
    .await
    .err()
    .expect("a non-loopback control address is refused");
    assert!(refused.to_string().contains("loopback"), "{refused}");
    let forced = FakeOci::start(Config {
        control: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        control_bind: fake_oci::Bind::Forced,
        ..Config::for_testing()
    })
    .await
    .expect("forced");
    assert!(forced.control_url().starts_with("http://0.0.0.0:"));
}

#[tokio::test]
async fn https_with_a_generated_certificate() {
    let fake = FakeOci::start(Config {
        tls: true,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    assert!(fake.endpoint().starts_with("https://127.0.0.1:"));
    let signer = Signer::for_fake(&fake);
    let url = tokens_url(&fake, TEST_USER);
    let headers = signer.headers("GET", &url, b"", TEST_EPOCH);
    // The certificate is self-signed for this run: a client must accept it explicitly.
    let strict = reqwest::Client::new();
    assert!(
        strict.get(&url).send().await.is_err(),
        "an unknown certificate is refused by default"
    );
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let mut req = client.get(&url);
    for (n, v) in &headers {
        if n != "host" {
            req = req.header(n, v);
        }
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "[]");
}

fn users_url(fake: &FakeOci) -> String {
    format!("{}/20160918/users", fake.endpoint())
}

#[tokio::test]
async fn users_lifecycle_and_the_token_rule() {
    let (fake, signer) = fake().await;
    let tenancy = fake.test_identity().tenancy;
    fake.control().set_lifecycle(Delay::Manual, Delay::Manual);
    let body = format!(
        r#"{{"compartmentId": "{tenancy}", "name": "alice", "description": "first", "email": "a@example.com"}}"#
    );
    let created = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&body),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["lifecycleState"], "CREATING");
    assert_eq!(created.body["name"], "alice");
    assert_eq!(created.body["email"], "a@example.com");
    assert_eq!(created.body["timeCreated"], "2026-01-01T00:00:00.000Z");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let user_url = format!("{}/{id}", users_url(&fake));

    // The same name again is a conflict; a name with a space is refused; another tenancy is 404.
    let again = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&body),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body["code"], "NotAuthorizedOrResourceAlreadyExists");
    let spaced = body.replace("alice", "al ice");
    let spaced = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&spaced),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(spaced.status, 400);
    let elsewhere = body.replace(&tenancy, "ocid1.tenancy.oc1..other");
    let elsewhere = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&elsewhere),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(elsewhere.status, 404);

    // CREATING until poked, then ACTIVE.
    assert_eq!(fake.control().poke(true), 1);
    let got = send(&signer, "GET", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["lifecycleState"], "ACTIVE");

    // Update in place: description and email.
    let updated = send(
        &signer,
        "PUT",
        &user_url,
        Some(r#"{"description": "second", "email": "b@example.com"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["description"], "second");
    assert_eq!(updated.body["email"], "b@example.com");
    assert_eq!(updated.body["name"], "alice");

    // Listed beside the test user, filtered by name.
    let listed = send(
        &signer,
        "GET",
        &format!("{}?compartmentId={tenancy}", users_url(&fake)),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    let named = send(
        &signer,
        "GET",
        &format!("{}?compartmentId={tenancy}&name=alice", users_url(&fake)),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(named.body.as_array().unwrap().len(), 1);
    // Query values are form-decoded; a malformed escape stays as it is.
    for (query, matches) in [
        ("%61lic%65", 1),
        ("alic", 0),
        ("alice%zz", 0),
        ("alice%", 0),
    ] {
        let named = send(
            &signer,
            "GET",
            &format!("{}?compartmentId={tenancy}&name={query}", users_url(&fake)),
            None,
            &[],
            TEST_EPOCH,
        )
        .await;
        assert_eq!(named.status, 200, "{query}");
        assert_eq!(named.body.as_array().unwrap().len(), matches, "{query}");
    }

    // A token blocks the delete until it is gone.
    let tokens = tokens_url(&fake, &id);
    let token = send(
        &signer,
        "POST",
        &tokens,
        Some(r#"{"description": "t"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(token.status, 200);
    fake.control().poke(true);
    let refused = send(&signer, "DELETE", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.body["code"], "Conflict");
    let token_id = token.body["id"].as_str().unwrap();
    let gone = send(
        &signer,
        "DELETE",
        &format!("{tokens}/{token_id}"),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(gone.status, 204);
    // A DELETING token still blocks.
    let refused = send(&signer, "DELETE", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(refused.status, 409);
    fake.control().poke(true);
    let deleted = send(&signer, "DELETE", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(deleted.status, 204);
    let got = send(&signer, "GET", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(got.body["lifecycleState"], "DELETING");
    fake.control().poke(true);
    let got = send(&signer, "GET", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(got.status, 404);
    let tokens_of_gone = send(&signer, "GET", &tokens, None, &[], TEST_EPOCH).await;
    assert_eq!(tokens_of_gone.status, 404);
}

#[tokio::test]
async fn lists_page_when_a_page_size_is_set() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    for d in ["a", "b"] {
        let body = format!(r#"{{"description": "{d}"}}"#);
        send(&signer, "POST", &url, Some(&body), &[], TEST_EPOCH).await;
    }
    fake.control().set_page_size(Some(1));
    let first = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(first.body.as_array().unwrap().len(), 1);
    assert_eq!(first.body[0]["description"], "a");
    let next = first.headers["opc-next-page"].to_str().unwrap().to_owned();
    let second = send(
        &signer,
        "GET",
        &format!("{url}?page={next}"),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(second.body[0]["description"], "b");
    assert!(!second.headers.contains_key("opc-next-page"));
    let bad = send(
        &signer,
        "GET",
        &format!("{url}?page=nonsense"),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(bad.status, 400);
    fake.control().set_page_size(None);
    let all = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    // A page size of 0 means no paging.
    fake.control().set_page_size(Some(0));
    let all = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert!(!all.headers.contains_key("opc-next-page"));
    assert!(!all.headers.contains_key("opc-next-page"));
}

#[tokio::test]
async fn session_tokens_sign_until_they_expire() {
    let (fake, mut signer) = fake().await;
    let token = fake
        .control()
        .issue_session(
            TEST_USER,
            fake_oci::TEST_PUBLIC_KEY,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    signer.key_id = format!("ST${token}");
    let url = tokens_url(&fake, TEST_USER);
    let ok = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    signer.key_id = format!("ST${token}x");
    let unknown = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(unknown.status, 401);
    signer.key_id = format!("ST${token}");
    fake.control().advance(std::time::Duration::from_secs(601));
    let later = TEST_EPOCH + time::Duration::seconds(601);
    let expired = send(&signer, "GET", &url, None, &[], later).await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["code"], "NotAuthenticated");
    assert!(
        expired.body["message"]
            .as_str()
            .unwrap()
            .contains("oci session refresh"),
        "{}",
        expired.body
    );
    assert!(
        fake.control()
            .issue_session(
                "ocid1.user.oc1..nobody",
                fake_oci::TEST_PUBLIC_KEY,
                std::time::Duration::from_secs(1)
            )
            .is_err()
    );
}

/// Each of the fake's own control routes changes what it names, as the state and the API show.
#[tokio::test]
async fn every_oci_control_route_takes_effect() {
    let (fake, signer) = fake().await;
    let client = reqwest::Client::new();
    let control = fake.control_url();
    let post = |path: &str, body: serde_json::Value| {
        client
            .post(format!("{control}/_fake/{path}"))
            .bearer_auth(fake.control_token())
            .json(&body)
            .send()
    };
    let state = || fake.control().state();
    let url = tokens_url(&fake, TEST_USER);
    let create = || {
        send(
            &signer,
            "POST",
            &url,
            Some(r#"{"description":"x"}"#),
            &[],
            TEST_EPOCH,
        )
    };

    // Users: a new user with the fixture key; a key that is not PEM is refused.
    let r = post(
        "users",
        serde_json::json!({"tenancy": "ocid1.tenancy.oc1..other", "user": "ocid1.user.oc1..new",
            "public_key_pem": fake_oci::TEST_PUBLIC_KEY}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let fingerprint: serde_json::Value = r.json().await.unwrap();
    assert_eq!(fingerprint["fingerprint"], fake.test_identity().fingerprint);
    assert_eq!(
        state()["users"]["ocid1.user.oc1..new"]["tenancy"],
        "ocid1.tenancy.oc1..other"
    );
    let r = post(
        "users",
        serde_json::json!({"tenancy": "t", "user": "u", "public_key_pem": "not a key"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert!(state()["users"].get("u").is_none());

    // Lifecycle: tokens are created CREATING until poked.
    let r = post("lifecycle", serde_json::json!({"creating": "manual"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(state()["lifecycle"]["creating"], "manual");
    assert_eq!(create().await.body["lifecycleState"], "CREATING");
    let r = post("poke", serde_json::json!({"drain": true}))
        .await
        .unwrap();
    let poked: serde_json::Value = r.json().await.unwrap();
    assert_eq!(poked["completed"], 1);
    assert_eq!(state()["tokens"][0]["state"], "ACTIVE");
    post("lifecycle", serde_json::json!({})).await.unwrap();

    // Token expiry: new tokens expire that many seconds after their creation.
    let r = post("token-expiry", serde_json::json!({"seconds": 60}))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let expiring = create().await;
    assert_eq!(expiring.body["timeExpires"], "2026-01-01T00:01:00.000Z");
    post("token-expiry", serde_json::json!({"seconds": null}))
        .await
        .unwrap();

    // A negative lifetime is no lifetime.
    let r = post("token-expiry", serde_json::json!({"seconds": -5}))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    fake.control().reset();
    assert!(create().await.body["timeExpires"].is_null());

    // Sessions: issued for a known user for 0 to 1e9 seconds.
    let session = |user: &str, seconds: f64| {
        post(
            "sessions",
            serde_json::json!({"user": user, "public_key_pem": fake_oci::TEST_PUBLIC_KEY,
                "seconds": seconds}),
        )
    };
    for seconds in [60.0, 0.0] {
        let r = session(TEST_USER, seconds).await.unwrap();
        assert_eq!(r.status(), 200, "{seconds}");
        let issued: serde_json::Value = r.json().await.unwrap();
        assert!(!issued["token"].as_str().unwrap().is_empty());
    }
    assert_eq!(state()["sessions"], 2);
    for (user, seconds) in [
        (TEST_USER, -1.0),
        (TEST_USER, 1e10),
        (TEST_USER, 1e9),
        ("ocid1.user.oc1..nobody", 60.0),
    ] {
        let r = session(user, seconds).await.unwrap();
        assert_eq!(r.status(), 400, "{user} {seconds}");
    }
    assert_eq!(state()["sessions"], 2);

    // Page size: shown in the state once set.
    let r = post("page-size", serde_json::json!({"size": 1}))
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(state()["page_size"], 1);

    // Seed: the same seed gives the same token ids again.
    fake.control().reset();
    post("page-size", serde_json::json!({"size": null}))
        .await
        .unwrap();
    let mut firsts = Vec::new();
    for seed in [5, 5, 6] {
        fake.control().reset();
        let r = post("seed", serde_json::json!({"seed": seed}))
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        firsts.push(create().await.body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(firsts[0], firsts[1]);
    assert_ne!(firsts[1], firsts[2]);
}

/// A list lag hides new tokens from that many lists, then shows them.
#[tokio::test]
async fn a_list_lag_hides_new_tokens_for_that_many_lists() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    fake.control().set_list_lag(2);
    let created = send(
        &signer,
        "POST",
        &url,
        Some(r#"{"description":"x"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(created.status, 200);
    let mut counts = Vec::new();
    for _ in 0..3 {
        let listed = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
        counts.push(listed.body.as_array().unwrap().len());
    }
    assert_eq!(counts, [0, 0, 1]);
}

/// After a shutdown the fake no longer answers.
#[tokio::test]
async fn a_shut_down_fake_answers_nothing() {
    let (fake, _) = fake().await;
    let endpoint = fake.endpoint();
    fake.shutdown().await;
    let refused = reqwest::Client::new()
        .get(format!("{endpoint}/20160918/users/x/authTokens"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

/// Injected 500 and 503 replies carry the service's codes for them.
#[tokio::test]
async fn injected_server_errors_carry_the_services_codes() {
    let (fake, signer) = fake().await;
    let url = tokens_url(&fake, TEST_USER);
    for (status, code) in [
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        (502, "InjectedFault"),
    ] {
        fake.control().add_fault(Rule {
            method: "GET".into(),
            path: "/20160918/users/*/authTokens".into(),
            times: Some(1),
            action: Action::Status {
                status,
                body: None,
                headers: None,
            },
        });
        let r = send(&signer, "GET", &url, None, &[], TEST_EPOCH).await;
        assert_eq!(r.status, status);
        assert_eq!(r.body["code"], code);
    }
}

/// Users of one tenancy are out of reach of another's callers; updates honour `if-match`;
/// a user create replays under its retry token; a user waiting for reads turns on the N-th.
#[tokio::test]
async fn users_are_kept_per_tenancy_and_guarded_by_etags_and_retry_tokens() {
    let (fake, signer) = fake().await;
    let tenancy = fake.test_identity().tenancy;
    fake.control()
        .set_lifecycle(Delay::Reads(2), Delay::Immediate);
    let body = format!(r#"{{"compartmentId": "{tenancy}", "name": "alice", "description": "d"}}"#);
    let retry = [("opc-retry-token", "user-1")];
    let created = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&body),
        &retry,
        TEST_EPOCH,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let replayed = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&body),
        &retry,
        TEST_EPOCH,
    )
    .await;
    assert_eq!(replayed.status, 200);
    assert_eq!(replayed.body, created.body);
    assert_eq!(replayed.headers["etag"], created.headers["etag"]);
    let other_body = body.replace("alice", "bob");
    let reused = send(
        &signer,
        "POST",
        &users_url(&fake),
        Some(&other_body),
        &retry,
        TEST_EPOCH,
    )
    .await;
    assert_eq!(reused.status, 409);
    assert_eq!(reused.body["code"], "InvalidatedRetryToken");

    let id = created.body["id"].as_str().unwrap().to_owned();
    let user_url = format!("{}/{id}", users_url(&fake));
    let first = send(&signer, "GET", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(first.body["lifecycleState"], "CREATING");
    let second = send(&signer, "GET", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(second.body["lifecycleState"], "ACTIVE");

    // An etag that is not the user's is refused; the user's own is taken.
    let update = Some(r#"{"description": "e"}"#);
    let stale = send(
        &signer,
        "PUT",
        &user_url,
        update,
        &[("if-match", "stale")],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(stale.status, 412);
    let etag = second.headers["etag"].to_str().unwrap().to_owned();
    let fresh = send(
        &signer,
        "PUT",
        &user_url,
        update,
        &[("if-match", &etag)],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.body["description"], "e");

    // A caller of another tenancy neither sees nor changes alice.
    let other_tenancy = "ocid1.tenancy.oc1..other";
    let outsider = "ocid1.user.oc1..outsider";
    let fingerprint = fake
        .control()
        .add_user(other_tenancy, outsider, fake_oci::TEST_PUBLIC_KEY)
        .unwrap();
    let stranger = common::Signer::new(
        other_tenancy,
        outsider,
        &fingerprint,
        fake_oci::TEST_PRIVATE_KEY,
    );
    for (method, body) in [("GET", None), ("PUT", update), ("DELETE", None)] {
        let r = send(&stranger, method, &user_url, body, &[], TEST_EPOCH).await;
        assert_eq!(r.status, 404, "{method}: {}", r.body);
    }
    let tokens = send(
        &stranger,
        "GET",
        &tokens_url(&fake, TEST_USER),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(
        tokens.status, 404,
        "another tenancy's user's tokens: {}",
        tokens.body
    );
    let theirs = send(
        &stranger,
        "GET",
        &format!("{}?compartmentId={other_tenancy}", users_url(&fake)),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(theirs.status, 200);
    assert!(
        !theirs.body.to_string().contains("alice"),
        "{}",
        theirs.body
    );
    let ours = send(
        &stranger,
        "GET",
        &format!("{}?compartmentId={tenancy}", users_url(&fake)),
        None,
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(ours.status, 404);
    let still = send(&signer, "GET", &user_url, None, &[], TEST_EPOCH).await;
    assert_eq!(still.status, 200);
    assert_eq!(still.body["description"], "e");
}

/// Users' transitions follow the clock and pokes as tokens' do, tokens first; a deleted user
/// is swept away, a live one stays; the state shows the Users API's view once it is used.
#[tokio::test]
async fn user_transitions_follow_the_clock_and_pokes() {
    let (fake, signer) = fake().await;
    let tenancy = fake.test_identity().tenancy;
    assert!(fake.control().state().get("user_profiles").is_none());
    let create_user = |name: &'static str| {
        let body =
            format!(r#"{{"compartmentId": "{tenancy}", "name": "{name}", "description": "d"}}"#);
        let url = users_url(&fake);
        let signer = &signer;
        async move { send(signer, "POST", &url, Some(&body), &[], TEST_EPOCH).await }
    };
    let get = |id: &str| {
        let url = format!("{}/{id}", users_url(&fake));
        let signer = &signer;
        async move { send(signer, "GET", &url, None, &[], TEST_EPOCH).await }
    };

    // Seconds: done once the clock has moved that far.
    fake.control()
        .set_lifecycle(Delay::Seconds(10.0), Delay::Immediate);
    let timed = create_user("timed").await;
    assert_eq!(timed.body["lifecycleState"], "CREATING");
    assert!(fake.control().state().get("user_profiles").is_some());
    let timed = timed.body["id"].as_str().unwrap().to_owned();
    fake.control().advance(std::time::Duration::from_secs(9));
    assert_eq!(get(&timed).await.body["lifecycleState"], "CREATING");
    fake.control().advance(std::time::Duration::from_secs(1));
    assert_eq!(get(&timed).await.body["lifecycleState"], "ACTIVE");

    // Manual: one poke completes a token before any user, then one user at a time.
    fake.control().set_lifecycle(Delay::Manual, Delay::Manual);
    let first = create_user("first").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = create_user("second").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = send(
        &signer,
        "POST",
        &tokens_url(&fake, TEST_USER),
        Some(r#"{"description": "t"}"#),
        &[],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(token.body["lifecycleState"], "CREATING");
    let states = || async {
        (
            get(&first).await.body["lifecycleState"].clone(),
            get(&second).await.body["lifecycleState"].clone(),
        )
    };
    assert_eq!(fake.control().poke(false), 1);
    assert_eq!(states().await, ("CREATING".into(), "CREATING".into()));
    assert_eq!(fake.control().state()["tokens"][0]["state"], "ACTIVE");
    assert_eq!(fake.control().poke(false), 1);
    let (a, b) = states().await;
    assert_ne!(a, b, "one user at a time");
    assert_eq!(fake.control().poke(false), 1);
    assert_eq!(states().await, ("ACTIVE".into(), "ACTIVE".into()));
    assert_eq!(fake.control().poke(false), 0);

    // A delete with a stale etag is refused; a deleted user is swept, the others stay.
    fake.control()
        .set_lifecycle(Delay::Immediate, Delay::Immediate);
    let url = format!("{}/{first}", users_url(&fake));
    let stale = send(
        &signer,
        "DELETE",
        &url,
        None,
        &[("if-match", "stale")],
        TEST_EPOCH,
    )
    .await;
    assert_eq!(stale.status, 412);
    fake.control()
        .issue_session(
            TEST_USER,
            fake_oci::TEST_PUBLIC_KEY,
            std::time::Duration::from_secs(600),
        )
        .unwrap();
    let deleted = send(&signer, "DELETE", &url, None, &[], TEST_EPOCH).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    fake.control().advance(std::time::Duration::from_secs(1));
    assert_eq!(get(&first).await.status, 404);
    assert_eq!(get(&second).await.status, 200);
    assert_eq!(get(&timed).await.status, 200);
    assert!(fake.control().state()["users"].get(&first).is_none());
    assert_eq!(
        fake.control().state()["sessions"],
        1,
        "the sweep keeps the sessions of the users that stay"
    );
}

/// `shutdown` returns once the requests in flight are done, and not before.
#[tokio::test]
async fn shutdown_waits_for_the_requests_in_flight() {
    use fake_kit::Api;
    let (fake, signer) = fake().await;
    fake.control().add_fault(Rule {
        method: "GET".into(),
        path: "/20160918/users/*/authTokens".into(),
        times: Some(1),
        action: Action::Delay { delay_ms: 1000 },
    });
    let control = fake.control();
    let url = tokens_url(&fake, TEST_USER);
    let held = tokio::spawn(async move { send(&signer, "GET", &url, None, &[], TEST_EPOCH).await });
    while control.app.kit().in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    fake.shutdown().await;
    assert_eq!(control.app.kit().in_flight(), 0);
    assert_eq!(control.requests().len(), 1, "the held request finished");
    assert_eq!(held.await.unwrap().status, 200);
}
