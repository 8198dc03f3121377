//! Replies no fake would give (served by wiremock) end in a typed error, never a panic.

use std::sync::Arc;
use std::time::Duration;

use oci_client::{Client, Environment, Error, FixedClock, RetryPolicy, SecretString, Settings};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = include_str!("../../../fixtures/oci/keys/test_user_key.pem");
const USER: &str = "ocid1.user.oc1..u";

fn client(endpoint: &str) -> Client {
    let settings = Settings {
        tenancy_ocid: Some("ocid1.tenancy.oc1..t".into()),
        user_ocid: Some("ocid1.user.oc1..u".into()),
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
        max_elapsed: Duration::from_millis(200),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        request_timeout: Duration::from_millis(300),
        poll_interval: Duration::from_millis(1),
        disabled: false,
    };
    Client::new(
        &creds,
        retry,
        Arc::new(FixedClock(time::OffsetDateTime::UNIX_EPOCH)),
    )
    .unwrap()
}

async fn check(reply: ResponseTemplate, expect: fn(&Error) -> bool) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("/20160918/users/.*/authTokens"))
        .respond_with(reply.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/20160918/users/.*/authTokens"))
        .respond_with(reply)
        .mount(&server)
        .await;
    let client = client(&server.uri());
    let err = client.list_auth_tokens(USER).await.unwrap_err();
    assert!(expect(&err), "list: {err:?}");
    let err = client.create_auth_token(USER, "d").await.unwrap_err();
    assert!(expect(&err), "create: {err:?}");
}

fn json(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

#[tokio::test]
async fn truncated_json() {
    check(json(200, r#"[{"id":"x","userId":"#), |e| {
        matches!(e, Error::Malformed { status: 200, .. })
    })
    .await;
}

#[tokio::test]
async fn wrong_types() {
    check(json(200, r#"{"id":5}"#), |e| {
        matches!(e, Error::Malformed { .. })
    })
    .await;
    check(json(200, r#"[{"id":"i","userId":"u","description":"d","lifecycleState":"ACTIVE","timeCreated":"yesterday"}]"#), |e| {
        matches!(e, Error::Malformed { .. })
    })
    .await;
}

#[tokio::test]
async fn html_error_pages() {
    let page = ResponseTemplate::new(502).set_body_raw(
        b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec(),
        "text/html",
    );
    check(page, |e| match e {
        Error::RetriesExhausted { last, .. } => matches!(&**last, Error::Service { status: 502, message, .. } if message.contains("502 Bad Gateway")),
        _ => false,
    })
    .await;
    let page = ResponseTemplate::new(404).set_body_raw(b"<html>nope</html>".to_vec(), "text/html");
    check(
        page,
        |e| matches!(e, Error::Service { status: 404, code, .. } if code == "Unknown"),
    )
    .await;
}

#[tokio::test]
async fn missing_fields_and_a_200_error_envelope() {
    check(json(200, r#"[{"id":"i"}]"#), |e| {
        matches!(e, Error::Malformed { .. })
    })
    .await;
    check(
        json(200, r#"{"code":"NotAuthenticated","message":"no"}"#),
        |e| matches!(e, Error::Malformed { status: 200, .. }),
    )
    .await;
}

#[tokio::test]
async fn wrong_content_type_is_judged_by_the_body() {
    let reply = ResponseTemplate::new(200).set_body_raw(b"plain text".to_vec(), "text/plain");
    check(reply, |e| matches!(e, Error::Malformed { .. })).await;
}

/// A plain TCP server on loopback that reads each request (one read) and hands the connection
/// to `answer`, which writes whatever raw reply the test needs.
async fn raw_server<F, Fut>(answer: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8192];
                let _ = stream.read(&mut request).await;
                answer(stream).await;
            });
        }
    });
    format!("http://{addr}")
}

/// A server that answers every connection with `head` and then holds the connection open
/// without sending the promised body.
async fn lying_server(head: &'static str) -> String {
    raw_server(move |mut stream| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = stream.write_all(head.as_bytes()).await;
        // Hold the connection until the client hangs up.
        let _ = stream.read(&mut [0u8; 8192]).await;
    })
    .await
}

#[tokio::test]
async fn a_huge_content_length_is_refused_before_reading() {
    let endpoint = lying_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n[",
    )
    .await;
    let err = client(&endpoint).list_auth_tokens(USER).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge(2_147_483_648)), "{err:?}");
    assert!(!err.is_retryable());
    let err = client(&endpoint)
        .create_auth_token(USER, "d")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge(2_147_483_648)), "{err:?}");

    // A body that grows past the limit without announcing its length is cut off too.
    let big = vec![b' '; (oci_client::client::MAX_BODY + 10) as usize];
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "application/json"))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .list_auth_tokens(USER)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn a_wrongly_typed_value_is_not_echoed_in_the_error() {
    let secret = "VALUE-THAT-MUST-NOT-APPEAR";
    let body = format!(
        r#"{{"id":"i","userId":"u","description":"d","token":"t","lifecycleState":"ACTIVE","timeCreated":"2026-01-01T00:00:00Z","inactiveStatus":"{secret}"}}"#
    );
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(200, &body))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .create_auth_token(USER, "d")
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(
        matches!(err, Error::Malformed { status: 200, .. }),
        "{text}"
    );
    assert!(!text.contains(secret), "the value was echoed");
    assert!(text.contains("invalid type"), "{text}");
}

#[tokio::test]
async fn slow_replies_time_out_and_are_retried_within_the_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(200, "[]").set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let err = client(&server.uri())
        .list_auth_tokens(USER)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { last, .. } if matches!(**last, Error::Timeout { .. }))
            || matches!(err, Error::Timeout { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_dead_server_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client(&format!("http://{addr}"))
        .list_auth_tokens(USER)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { last, .. } if matches!(**last, Error::Connect { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn replies_up_to_sixteen_mebibytes_are_read_and_no_larger() {
    const LIMIT: usize = 16 * 1024 * 1024;
    let padded = |len: usize| {
        let mut body = vec![b' '; len];
        body[0] = b'[';
        body[len - 1] = b']';
        body
    };
    for (len, fits) in [(LIMIT, true), (LIMIT + 1, false)] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(padded(len), "application/json"))
            .mount(&server)
            .await;
        let listed = client(&server.uri()).list_auth_tokens(USER).await;
        match (listed, fits) {
            (Ok(tokens), true) => assert!(tokens.is_empty()),
            (Err(Error::TooLarge(_)), false) => {}
            (other, _) => panic!("{len} bytes: {other:?}"),
        }
    }
}

#[test]
fn a_client_shows_its_endpoint_and_not_its_key() {
    let client = client("https://identity.example.test");
    assert_eq!(client.endpoint(), "https://identity.example.test/");
    let text = format!("{client:?}");
    assert!(text.starts_with("Client {"), "{text}");
    assert!(text.contains("https://identity.example.test/"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    assert!(!client.plain_http_to_remote());
    assert!(crate::client("http://identity.example.test").plain_http_to_remote());
    assert!(!crate::client("http://127.0.0.1:1").plain_http_to_remote());
}

/// A server that sends `[`, `len - 2` spaces and `]` chunked, without a content-length.
async fn chunked_server(len: usize) -> String {
    raw_server(move |mut stream| async move {
        use tokio::io::AsyncWriteExt;
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut body = vec![b' '; len];
        body[0] = b'[';
        body[len - 1] = b']';
        for chunk in body.chunks(64 * 1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    })
    .await
}

#[tokio::test]
async fn chunked_replies_up_to_sixteen_mebibytes_are_read_and_no_larger() {
    const LIMIT: usize = 16 * 1024 * 1024;
    let tokens = client(&chunked_server(LIMIT).await)
        .list_auth_tokens(USER)
        .await
        .unwrap();
    assert!(tokens.is_empty());
    let err = client(&chunked_server(LIMIT + 1).await)
        .list_auth_tokens(USER)
        .await
        .unwrap_err();
    match err {
        Error::TooLarge(n) => assert!(n > LIMIT as u64 && n <= 2 * LIMIT as u64, "{n}"),
        other => panic!("{other:?}"),
    }
}

/// The error `err` is, or the last one of the retries it ended.
fn last(err: &Error) -> &Error {
    match err {
        Error::RetriesExhausted { last, .. } => last,
        other => other,
    }
}

#[tokio::test]
async fn a_body_that_stalls_times_out_and_one_cut_short_is_a_connection_error() {
    let stalled = lying_server(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n[",
    )
    .await;
    let err = client(&stalled).list_auth_tokens(USER).await.unwrap_err();
    assert!(matches!(last(&err), Error::Timeout { .. }), "{err:?}");

    let cut = raw_server(|mut stream| async move {
        use tokio::io::AsyncWriteExt;
        let _ = stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n[",
            )
            .await;
        // Dropping the stream closes the connection with the body cut short.
    })
    .await;
    let err = client(&cut).list_auth_tokens(USER).await.unwrap_err();
    assert!(matches!(last(&err), Error::Connect { .. }), "{err:?}");
}
