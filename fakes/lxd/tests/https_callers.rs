//! What the fake answers HTTPS callers by who they are: Incus names them by fingerprint, and a
//! restricted client may not issue tokens while an unrestricted one may; and the decode errors
//! Go's JSON decoder gives for a value of the wrong kind.

mod common;

use common::{Cert, https_client, https_request, unix_request};
use fake_lxd::{Config, FakeLxd, Profile};

async fn fake(profile: Profile) -> FakeLxd {
    FakeLxd::start(Config {
        profile,
        ..Config::for_testing()
    })
    .await
    .unwrap()
}

/// Joins a new client named `name` (restricted to `default` when `restricted`) with a token
/// made over the socket; returns its HTTPS client.
async fn join(fake: &FakeLxd, name: &str, restricted: bool) -> reqwest::Client {
    let body = if restricted {
        format!(
            r#"{{"name": "{name}", "type": "client", "token": true, "restricted": true, "projects": ["default"]}}"#
        )
    } else {
        format!(r#"{{"name": "{name}", "type": "client", "token": true}}"#)
    };
    let reply = unix_request(fake.unix_socket(), "POST", "/1.0/certificates", Some(&body)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let token = fake.control().pending_tokens()[0].1.clone();
    let cert = Cert::generate(name);
    let client = https_client(Some(&cert));
    let field = match fake.control().profile() {
        Profile::V5_0 => "password",
        Profile::V6 | Profile::Incus6_0 => "trust_token",
    };
    let join = format!(r#"{{"type": "client", "{field}": "{token}"}}"#);
    let addr = fake.https_addr().to_string();
    let reply = https_request(&client, &addr, "POST", "/1.0/certificates", Some(&join)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    client
}

#[tokio::test]
async fn incus_names_an_https_caller_by_its_fingerprint_and_a_socket_caller_root() {
    let fake = fake(Profile::Incus6_0).await;
    let client = join(&fake, "kate", false).await;
    let fingerprint = fake.control().certificates()[0].1.clone();
    let addr = fake.https_addr().to_string();
    let remote = https_request(&client, &addr, "GET", "/1.0", None)
        .await
        .json();
    assert_eq!(remote["metadata"]["auth_user_name"], fingerprint.as_str());
    assert_eq!(remote["metadata"]["auth_user_method"], "tls");
    let local = unix_request(fake.unix_socket(), "GET", "/1.0", None)
        .await
        .json();
    assert_eq!(local["metadata"]["auth_user_name"], "root");
    assert_eq!(local["metadata"]["auth_user_method"], "unix");
}

/// A restricted client is refused a token (403) beside an unrestricted one that gets it, in
/// whichever order they joined.
#[tokio::test]
async fn only_unrestricted_https_clients_issue_tokens() {
    for restricted_first in [true, false] {
        let fake = fake(Profile::V5_0).await;
        let (restricted, free) = if restricted_first {
            let r = join(&fake, "limited", true).await;
            (r, join(&fake, "free", false).await)
        } else {
            let f = join(&fake, "free", false).await;
            (join(&fake, "limited", true).await, f)
        };
        let addr = fake.https_addr().to_string();
        let ask = r#"{"name": "new", "type": "client", "token": true}"#;
        let reply = https_request(&free, &addr, "POST", "/1.0/certificates", Some(ask)).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let reply = https_request(&restricted, &addr, "POST", "/1.0/certificates", Some(ask)).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
    }
}

/// Go names the kind it found: an array where a string belongs is an array, a number inside
/// a list of strings is a number of type string.
#[tokio::test]
async fn wrong_kinds_are_named_as_go_names_them() {
    let fake = fake(Profile::V5_0).await;
    for (body, error) in [
        (
            r#"{"name": [1], "type": "client", "token": true}"#,
            "json: cannot unmarshal array into Go struct field CertificatesPost.name of type string",
        ),
        (
            r#"{"name": "x", "projects": [1], "token": true}"#,
            "json: cannot unmarshal number into Go struct field CertificatesPost.projects of type string",
        ),
        (
            r#"{"name": "x", "projects": "default", "token": true}"#,
            "json: cannot unmarshal string into Go struct field CertificatesPost.projects of type []string",
        ),
    ] {
        let reply = unix_request(fake.unix_socket(), "POST", "/1.0/certificates", Some(body)).await;
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.json()["error"], error, "{body}");
    }
}
