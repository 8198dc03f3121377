//! What the client puts on the wire, checked on wiremock's record of the requests: signatures
//! that verify against the public key over exactly what was sent (query included), one
//! `opc-retry-token` per logical create, paging, `if-match`, and `retry-after` bounded by the
//! deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oci_client::ExposeSecret;
use oci_client::{Client, Environment, Error, FixedClock, RetryPolicy, SecretString, Settings};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = include_str!("../../../fixtures/oci/keys/test_user_key.pem");
const PUBLIC: &str = include_str!("../../../fixtures/oci/keys/test_user_public.pem");
const FINGERPRINT: &str = include_str!("../../../fixtures/oci/keys/test_user_fingerprint.txt");
const TENANCY: &str = "ocid1.tenancy.oc1..tenancy";
const USER: &str = "ocid1.user.oc1..user";

fn client(endpoint: &str, max_elapsed: Duration) -> Client {
    let settings = Settings {
        tenancy_ocid: Some(TENANCY.into()),
        user_ocid: Some(USER.into()),
        fingerprint: Some(FINGERPRINT.trim().into()),
        private_key: Some(SecretString::from(KEY)),
        endpoint: Some(endpoint.to_owned()),
        ..Settings::default()
    };
    let env = Environment {
        var: &|_| None,
        read_file: &|_| Err(std::io::ErrorKind::NotFound.into()),
        home: None,
    };
    let creds = oci_client::config::resolve(&settings, &env).unwrap();
    let retry = RetryPolicy {
        max_elapsed,
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(1),
        disabled: false,
    };
    let clock = time::macros::datetime!(2026-11-23 05:00:00 UTC);
    Client::new(&creds, retry, Arc::new(FixedClock(clock))).unwrap()
}

fn token_json(id: &str, description: &str, secret: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "userId": USER,
        "description": description,
        "token": secret,
        "timeCreated": "2026-11-23T05:00:00.000Z",
        "timeExpires": null,
        "lifecycleState": "ACTIVE",
        "inactiveStatus": null,
    })
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks a recorded request the way OCI does: rebuild the signing string from what arrived
/// and verify the RSA signature with the user's public key.
fn verify(request: &Request) {
    let authorization = header(request, "authorization").expect("an authorization header");
    let params = authorization
        .strip_prefix("Signature ")
        .expect("the Signature scheme");
    let param = |name: &str| -> String {
        params
            .split(',')
            .find_map(|p| p.strip_prefix(&format!("{name}=\"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {name} parameter"))
            .to_owned()
    };
    assert_eq!(param("algorithm"), "rsa-sha256");
    assert_eq!(param("version"), "1");
    assert_eq!(
        param("keyId"),
        format!("{TENANCY}/{USER}/{}", FINGERPRINT.trim())
    );
    let names = param("headers");
    let body_method = matches!(request.method.as_str(), "POST" | "PUT" | "PATCH");
    let expected_names = if body_method {
        "date (request-target) host content-length content-type x-content-sha256"
    } else {
        "date (request-target) host"
    };
    assert_eq!(names, expected_names);
    let target = match request.url.query() {
        Some(query) => format!("{}?{query}", request.url.path()),
        None => request.url.path().to_owned(),
    };
    let lines: Vec<String> = names
        .split(' ')
        .map(|name| match name {
            "(request-target)" => format!(
                "(request-target): {} {target}",
                request.method.as_str().to_ascii_lowercase()
            ),
            other => format!(
                "{other}: {}",
                header(request, other).unwrap_or_else(|| panic!("no {other} header"))
            ),
        })
        .collect();
    if body_method {
        assert_eq!(
            header(request, "x-content-sha256"),
            Some(STANDARD.encode(Sha256::digest(&request.body)).as_str())
        );
        assert_eq!(
            header(request, "content-length"),
            Some(request.body.len().to_string().as_str())
        );
    }
    assert_eq!(
        header(request, "date"),
        Some("Mon, 23 Nov 2026 05:00:00 GMT")
    );
    let key = VerifyingKey::<Sha256>::new(RsaPublicKey::from_public_key_pem(PUBLIC).unwrap());
    let signature =
        Signature::try_from(STANDARD.decode(param("signature")).unwrap().as_slice()).unwrap();
    key.verify(lines.join("\n").as_bytes(), &signature)
        .expect("the signature verifies over what was sent");
}

#[tokio::test]
async fn list_follows_every_page_and_signs_the_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("/authTokens$"))
        .and(query_param("page", "p 2/3"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([token_json(
                    "ocid1.credential.oc1..t2",
                    "two",
                    None
                )]))
                .insert_header("opc-next-page", "p3"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/authTokens$"))
        .and(query_param("page", "p3"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!([token_json(
                "ocid1.credential.oc1..t3",
                "three",
                None
            )])),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/authTokens$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([token_json(
                    "ocid1.credential.oc1..t1",
                    "one",
                    None
                )]))
                .insert_header("opc-next-page", "p 2/3"),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let client = client(&server.uri(), Duration::from_secs(2));
    let tokens = client.list_auth_tokens(USER).await.unwrap();
    let ids: Vec<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ocid1.credential.oc1..t1",
            "ocid1.credential.oc1..t2",
            "ocid1.credential.oc1..t3"
        ]
    );
    let got = client
        .get_auth_token(USER, "ocid1.credential.oc1..t3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.description, "three");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 6);
    assert_eq!(requests[1].url.query(), Some("page=p%202%2F3"));
    for request in &requests {
        verify(request);
        assert_eq!(header(request, "accept"), Some("application/json"));
        assert!(header(request, "opc-retry-token").is_none());
    }
}

#[tokio::test]
async fn one_retry_token_per_logical_create() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            serde_json::json!({"code": "ServiceUnavailable", "message": "try later"}),
        ))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_json(
                    "ocid1.credential.oc1..t1",
                    "ci token",
                    Some("s3cr3t-value"),
                ))
                .insert_header("etag", "e1"),
        )
        .with_priority(2)
        .mount(&server)
        .await;
    let client = client(&server.uri(), Duration::from_secs(2));
    let first = client.create_auth_token(USER, "ci token").await.unwrap();
    assert_eq!(first.etag.as_deref(), Some("e1"));
    assert_eq!(
        first.token.as_ref().unwrap().expose_secret(),
        "s3cr3t-value"
    );
    client.create_auth_token(USER, "ci token").await.unwrap();

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 4, "two refused attempts, then two creates");
    let tokens: Vec<&str> = requests
        .iter()
        .map(|r| header(r, "opc-retry-token").unwrap())
        .collect();
    for token in &tokens {
        assert_eq!(token.len(), 30);
        assert!(token.chars().all(|c| c.is_ascii_alphanumeric()), "{token}");
    }
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(tokens[1], tokens[2], "every retry reuses the token");
    assert_ne!(tokens[2], tokens[3], "a new create gets a new token");
    let request_ids: std::collections::BTreeSet<&str> = requests
        .iter()
        .map(|r| header(r, "opc-request-id").unwrap())
        .collect();
    assert_eq!(request_ids.len(), 4, "each attempt has its own request id");
    for request in &requests {
        verify(request);
        assert_eq!(request.body, br#"{"description":"ci token"}"#);
        assert_eq!(header(request, "content-type"), Some("application/json"));
        assert_eq!(header(request, "opc-client-retries"), Some("true"));
    }
}

#[tokio::test]
async fn update_and_delete_send_if_match_only_when_given() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_json("ocid1.credential.oc1..t1", "renamed", None))
                .insert_header("etag", "e2"),
        )
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let client = client(&server.uri(), Duration::from_secs(2));
    let updated = client
        .update_auth_token(USER, "ocid1.credential.oc1..t1", "renamed", Some("e1"))
        .await
        .unwrap();
    assert_eq!(
        (updated.description.as_str(), updated.etag.as_deref()),
        ("renamed", Some("e2"))
    );
    client
        .update_auth_token(USER, "ocid1.credential.oc1..t1", "renamed", None)
        .await
        .unwrap();
    client
        .delete_auth_token(USER, "ocid1.credential.oc1..t1", Some("e2"))
        .await
        .unwrap();
    client
        .delete_auth_token(USER, "ocid1.credential.oc1..t1", None)
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let if_match: Vec<Option<&str>> = requests.iter().map(|r| header(r, "if-match")).collect();
    assert_eq!(if_match, [Some("e1"), None, Some("e2"), None]);
    for request in &requests {
        verify(request);
    }
    assert_eq!(
        requests[2].url.path(),
        "/20160918/users/ocid1.user.oc1..user/authTokens/ocid1.credential.oc1..t1"
    );
    assert_eq!(header(&requests[2], "content-length"), Some("0"));
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_ends_the_retries_at_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(
                    serde_json::json!({"code": "TooManyRequests", "message": "slow down"}),
                )
                .insert_header("retry-after", "3600")
                .insert_header("opc-request-id", "req-1"),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri(), Duration::from_millis(500));
    let started = Instant::now();
    let err = client.list_auth_tokens(USER).await.unwrap_err();
    // A safety net only: the client must not sleep an hour.
    assert!(started.elapsed() < Duration::from_secs(30));
    match &err {
        Error::RetriesExhausted { attempts, last, .. } => {
            assert_eq!(*attempts, 1);
            assert!(
                matches!(&**last, Error::Service { status: 429, code, message, request_id }
                    if code == "TooManyRequests" && message == "slow down" && request_id == "req-1"),
                "{last:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn errors_that_are_not_retried_are_sent_once() {
    let server = MockServer::start().await;
    for (status, code) in [
        (400, "InvalidParameter"),
        (401, "NotAuthenticated"),
        (409, "Conflict"),
        (412, "NoEtagMatch"),
        (501, "MethodNotImplemented"),
    ] {
        server.reset().await;
        Mock::given(method("PUT"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(serde_json::json!({"code": code, "message": "no"})),
            )
            .mount(&server)
            .await;
        let err = client(&server.uri(), Duration::from_secs(2))
            .update_auth_token(USER, "ocid1.credential.oc1..t1", "d", None)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Service { status: s, code: c, .. } if *s == status && c == code),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "{status}"
        );
    }
}
