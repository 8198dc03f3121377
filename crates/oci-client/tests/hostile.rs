//! What a hostile or broken server, or a bad id, does to the client: typed errors, never a
//! panic, never a request to somewhere it was not meant to go.
//!
//! - `retry-after` values of any size, and arbitrary statuses, headers and bodies (served by
//!   wiremock), end in a result or a typed error;
//! - a zero retry window still gives the one attempt its full time (against fake-oci);
//! - redirects are never followed, so a signed POST is sent once, to the API only;
//! - ids that are not OCIDs are refused before any request, and the ids that are accepted reach
//!   the server as exactly one path segment each.
//!
//! Raise the case counts locally with `PROPTEST_CASES=1000 cargo nextest run -p oci-client --test hostile`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_oci::faults::{Action, Rule};
use fake_oci::{Config, FakeOci, TEST_EPOCH};
use oci_client::{Client, Error, FixedClock, RetryPolicy, SecretString, Settings};
use proptest::prelude::*;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = include_str!("../../../fixtures/oci/keys/test_user_key.pem");
const USER: &str = "ocid1.user.oc1..aaaaaaaauser";
const TOKEN: &str = "ocid1.credential.oc1..aaaaaaaatoken";

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_elapsed: Duration::from_millis(30),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(1),
        disabled: false,
    }
}

fn client(endpoint: &str, retry: RetryPolicy) -> Client {
    let settings = Settings {
        tenancy_ocid: Some("ocid1.tenancy.oc1..t".into()),
        user_ocid: Some(USER.into()),
        private_key: Some(SecretString::from(KEY)),
        endpoint: Some(endpoint.to_owned()),
        ..Settings::default()
    };
    let creds = oci_client::config::resolve(&settings, &common::empty_environment()).unwrap();
    Client::new(&creds, retry, Arc::new(FixedClock(TEST_EPOCH))).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Every operation once; none may panic.
async fn every_operation(client: &Client) -> Vec<Result<(), Error>> {
    vec![
        client.list_auth_tokens(USER).await.map(drop),
        client.create_auth_token(USER, "d").await.map(drop),
        client
            .update_auth_token(USER, TOKEN, "d", Some("e"))
            .await
            .map(drop),
        client.delete_auth_token(USER, TOKEN, None).await,
        client.get_auth_token(USER, TOKEN).await.map(drop),
    ]
}

#[tokio::test]
async fn a_retry_after_of_1e20_seconds_ends_the_retries_instead_of_panicking() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(serde_json::json!({"code": "TooManyRequests", "message": "no"}))
                .insert_header("retry-after", "1e20"),
        )
        .mount(&server)
        .await;
    let client = client(&server.uri(), fast());
    for result in every_operation(&client).await {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::RetriesExhausted { attempts: 1, .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), Some(429));
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_zero_retry_window_still_gives_each_request_its_full_time() {
    let fake = FakeOci::start(Config::for_testing()).await.unwrap();
    let user = fake.test_identity().user;
    let retry = RetryPolicy {
        max_elapsed: Duration::ZERO,
        ..fast()
    };
    let client = Client::new(
        &common::credentials(&fake, &user),
        retry,
        Arc::new(FixedClock(TEST_EPOCH)),
    )
    .unwrap();
    // Each reply takes a little while, as over any real network.
    for method in ["POST", "GET"] {
        fake.control().add_fault(Rule {
            method: method.into(),
            path: "/20160918/**".into(),
            times: Some(1),
            action: Action::Delay { delay_ms: 50 },
        });
    }
    let created = client.create_auth_token(&user, "slow network").await;
    let created = created.unwrap_or_else(|err| panic!("the create timed out: {err:?}"));
    let listed = client.list_auth_tokens(&user).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    let posts = fake
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn redirects_are_refused_and_never_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&elsewhere)
        .await;
    for status in [301u16, 302, 303, 307, 308] {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}/stolen", elsewhere.uri())),
            )
            .mount(&server)
            .await;
        let client = client(&server.uri(), fast());
        for result in every_operation(&client).await {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::Redirect { status: s, location } if *s == status && location.ends_with("/stolen")),
                "{status}: {err:?}"
            );
            assert!(!err.is_retryable());
            assert!(err.to_string().contains("not followed"), "{err}");
        }
        let posts = server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.method.as_str() == "POST")
            .count();
        assert_eq!(posts, 1, "{status}: the create was sent once");
    }
    assert_eq!(elsewhere.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn ids_that_are_not_ocids_are_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(&server)
        .await;
    let client = client(&server.uri(), fast());
    for bad in [
        "",
        ".",
        "..",
        "%2e%2e",
        "u1",
        "ocid1.user.oc1..a/../../x",
        "ocid1.user.oc1..a?x=1",
        "ocid1.user.oc1..a#f",
    ] {
        let user_errors = [
            client.create_auth_token(bad, "d").await.map(drop),
            client.list_auth_tokens(bad).await.map(drop),
            client
                .update_auth_token(bad, TOKEN, "d", None)
                .await
                .map(drop),
            client.delete_auth_token(bad, TOKEN, None).await,
            client.get_auth_token(bad, TOKEN).await.map(drop),
        ];
        for result in user_errors {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::InvalidId {
                        name: "user_id",
                        ..
                    }
                ),
                "{bad:?}: {err:?}"
            );
            assert!(err.to_string().starts_with("user_id "), "{err}");
        }
        let token_errors = [
            client
                .update_auth_token(USER, bad, "d", None)
                .await
                .map(drop),
            client.delete_auth_token(USER, bad, None).await,
            client.get_auth_token(USER, bad).await.map(drop),
        ];
        for result in token_errors {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::InvalidId {
                        name: "token_id",
                        ..
                    }
                ),
                "{bad:?}: {err:?}"
            );
        }
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

/// A header value wiremock can send: visible ASCII, spaces, tabs and obs-text.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[0-9.eE+-]{0,30}".prop_map(String::into_bytes),
        Just(b"1e20".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"NaN".to_vec()),
        Just(b"inf".to_vec()),
        Just(b"-1".to_vec()),
        proptest::collection::vec(
            prop_oneof![0x20u8..=0x7e, 0x80u8..=0xff, Just(b'\t')],
            0..60
        ),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("retry-after".to_owned()),
        Just("location".to_owned()),
        Just("etag".to_owned()),
        Just("opc-next-page".to_owned()),
        Just("opc-request-id".to_owned()),
        Just("content-type".to_owned()),
        "x-[a-z]{1,8}",
    ]
}

/// A body: arbitrary bytes, or something close to what the API sends.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let token = r#"{"id":"ocid1.credential.oc1..a","userId":"ocid1.user.oc1..u","description":"d","token":"s","lifecycleState":"ACTIVE","inactiveStatus":null,"timeCreated":"2026-01-01T00:00:00Z","timeExpires":null}"#;
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        Just(token.as_bytes().to_vec()),
        Just(format!("[{token},{token}]").into_bytes()),
        (0..token.len()).prop_map(move |cut| token.as_bytes()[..cut].to_vec()),
        (0..token.len(), any::<u8>()).prop_map(move |(at, byte)| {
            let mut bytes = token.as_bytes().to_vec();
            bytes[at] = byte;
            bytes
        }),
        Just(br#"{"code":"X","message":"m"}"#.to_vec()),
        Just(br#"{"inactiveStatus":1e400}"#.to_vec()),
    ]
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn reply() -> impl Strategy<Value = Reply> {
    (
        prop_oneof![
            3 => Just(200u16),
            1 => Just(429u16),
            1 => prop_oneof![Just(301u16), Just(302), Just(307)],
            1 => 200u16..600,
        ],
        proptest::collection::vec((header_name(), header_value()), 0..4),
        body(),
    )
        .prop_map(|(status, headers, body)| Reply {
            status,
            headers,
            body,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the server answers, every operation ends, without a panic, soon.
    #[test]
    fn arbitrary_replies_end_in_a_result_or_a_typed_error(replies in proptest::collection::vec(reply(), 1..4)) {
        runtime().block_on(async {
            let server = MockServer::start().await;
            for reply in &replies {
                let mut template = ResponseTemplate::new(reply.status)
                    .set_body_raw(reply.body.clone(), "application/json");
                for (name, value) in &reply.headers {
                    let value = http::HeaderValue::from_bytes(value).expect("a valid header value");
                    template = template.insert_header(name.as_str(), value);
                }
                Mock::given(wiremock::matchers::any())
                    .respond_with(template)
                    .up_to_n_times(2)
                    .mount(&server)
                    .await;
            }
            let client = client(&server.uri(), fast());
            let started = Instant::now();
            let results = every_operation(&client).await;
            prop_assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
            for result in results {
                if let Err(err) = result {
                    // Errors print without a panic and say something.
                    prop_assert!(!err.to_string().is_empty());
                }
            }
            Ok(())
        })?;
    }

    /// An id is refused before any request, or it reaches the server as exactly one path
    /// segment that decodes to itself.
    #[test]
    fn ids_reach_the_server_as_one_segment_or_not_at_all(
        id in prop_oneof![
            "ocid1\\.[a-z]{1,6}\\.oc1\\.[a-z0-9-]{0,10}\\.[a-z0-9_-]{1,20}",
            "ocid1\\.user\\.oc1\\.\\.[a-z0-9]{1,4}[./%?#;\\\\ ]{0,3}[a-z0-9.]{0,4}",
            "[./%a-z0-9]{0,12}",
            any::<String>(),
        ]
    ) {
        runtime().block_on(async {
            let server = MockServer::start().await;
            Mock::given(wiremock::matchers::any())
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
                .mount(&server)
                .await;
            let client = client(&server.uri(), fast());
            let listed = client.list_auth_tokens(&id).await;
            let deleted = client.delete_auth_token(USER, &id, None).await;
            let requests = server.received_requests().await.unwrap();
            let accepted = oci_client::path::check_ocid("user_id", &id).is_ok();
            match (accepted, listed, deleted) {
                (true, Ok(_), Ok(())) => {
                    prop_assert_eq!(requests.len(), 2);
                    let segments: Vec<&str> = requests[0].url.path().split('/').collect();
                    prop_assert_eq!(segments.len(), 5, "{}", requests[0].url);
                    prop_assert_eq!(segments[3], id.as_str());
                    let segments: Vec<&str> = requests[1].url.path().split('/').collect();
                    prop_assert_eq!(segments.len(), 6, "{}", requests[1].url);
                    prop_assert_eq!(segments[5], id.as_str());
                }
                (false, Err(Error::InvalidId { name: "user_id", .. }), Err(Error::InvalidId { name: "token_id", .. })) => {
                    prop_assert_eq!(requests.len(), 0);
                }
                (accepted, listed, deleted) => {
                    prop_assert!(false, "{id:?} accepted={accepted}: {listed:?} {deleted:?}");
                }
            }
            Ok(())
        })?;
    }
}

/// A config file: lines an OCI config file has, in any order, with junk among them.
fn config_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("[DEFAULT]".to_owned()),
        Just("[other]".to_owned()),
        Just("[".to_owned()),
        Just("user=ocid1.user.oc1..u".to_owned()),
        Just("tenancy=ocid1.tenancy.oc1..t".to_owned()),
        Just("key_file=/keys/k.pem".to_owned()),
        Just("key_file=~".to_owned()),
        Just("fingerprint=aa:bb".to_owned()),
        Just("security_token_file=/t".to_owned()),
        Just("pass_phrase=p".to_owned()),
        Just("region=us-ashburn-1".to_owned()),
        "[a-z_]{0,8} ?= ?[ -~]{0,12}",
        any::<String>(),
    ];
    prop_oneof![
        proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n")),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

/// A key file: junk, PEM armour around junk, or the test key cut short or with a byte changed.
fn key_text() -> impl Strategy<Value = String> {
    use base64::Engine;
    let armoured = (
        prop_oneof![
            Just("RSA PRIVATE KEY"),
            Just("PRIVATE KEY"),
            Just("ENCRYPTED PRIVATE KEY")
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(label, der)| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
        });
    prop_oneof![
        any::<String>(),
        armoured,
        (0..KEY.len()).prop_map(|cut| KEY[..cut].to_owned()),
        (
            40..KEY.len() - 40,
            proptest::sample::select(&b"AZaz09+/=\n-"[..])
        )
            .prop_map(|(at, byte)| {
                let mut bytes = KEY.as_bytes().to_vec();
                bytes[at] = byte;
                String::from_utf8_lossy(&bytes).into_owned()
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any config file and key file: credentials or a typed error, never a panic.
    #[test]
    fn arbitrary_config_and_key_files_resolve_or_fail(
        config in config_text(),
        key in key_text(),
        profile in proptest::option::of(prop_oneof![Just("DEFAULT".to_owned()), Just("other".to_owned()), "[ -~]{0,6}"]),
        passphrase in proptest::option::of("[ -~]{0,8}"),
    ) {
        let _ = oci_client::config::parse_profile(&config, profile.as_deref().unwrap_or("DEFAULT"));
        let read_file = |path: &std::path::Path| -> std::io::Result<String> {
            if path == std::path::Path::new("/cfg") {
                Ok(config.clone())
            } else {
                Ok(key.clone())
            }
        };
        let var = |name: &str| (name == "OCI_CONFIG_FILE").then(|| "/cfg".to_owned());
        let env = oci_client::Environment {
            var: &var,
            read_file: &read_file,
            home: Some("/home/u".into()),
        };
        let settings = Settings {
            config_file_profile: profile,
            private_key_password: passphrase.map(SecretString::from),
            ..Settings::default()
        };
        if let Err(err) = oci_client::config::resolve(&settings, &env) {
            prop_assert!(!err.to_string().is_empty());
        }
        let _ = oci_client::signer::parse_private_key(&SecretString::from(key.clone()), None);
    }
}
