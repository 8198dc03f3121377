//! Replies no fake would give, served raw over a unix socket, end in a typed error, never a panic.

use std::time::Duration;

use lxd_client::{Client, Error, RetryPolicy, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that answers every request with `reply`, verbatim.
async fn canned(reply: Vec<u8>) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    let retry = RetryPolicy {
        deadline: Duration::from_millis(100),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        request_timeout: Duration::from_millis(500),
        create_attempts: 1,
    };
    (dir, Client::new(Target::Unix(path), retry))
}

fn http(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_bytes()
}

async fn check(reply: Vec<u8>, expect: fn(&Error) -> bool) {
    let (_dir, client) = canned(reply).await;
    let err = client.server_info().await.unwrap_err();
    assert!(expect(&err), "server_info: {err:?}");
    let err = client
        .get_token("00000000-0000-4000-8000-000000000000")
        .await
        .unwrap_err();
    assert!(expect(&err), "get_token: {err:?}");
}

#[tokio::test]
async fn truncated_json() {
    check(
        http(
            "200 OK",
            "application/json",
            r#"{"type":"sync","metadata":{"auth":"#,
        ),
        |e| matches!(e, Error::Malformed { .. }),
    )
    .await;
}

#[tokio::test]
async fn wrong_types_and_missing_fields() {
    // Server info reads what it can: wrong types count as absent (untrusted, no extensions).
    let (_dir, client) = canned(http(
        "200 OK",
        "application/json",
        r#"{"type":"sync","metadata":{"api_extensions":"not a list","auth":5}}"#,
    ))
    .await;
    let info = client.server_info().await.unwrap();
    assert!(!info.trusted && info.api_extensions.is_empty());
    assert!(matches!(
        client
            .get_token("00000000-0000-4000-8000-000000000000")
            .await
            .unwrap_err(),
        Error::Malformed { .. }
    ));
    // An operation list with entries that are not operations yields no tokens.
    let (_dir, client) = canned(http(
        "200 OK",
        "application/json",
        r#"{"type":"sync","metadata":{"running":[{"id":5}]}}"#,
    ))
    .await;
    assert_eq!(client.list_tokens().await.unwrap(), []);
    let (_dir, client) = canned(http(
        "200 OK",
        "application/json",
        r#"{"type":"sync","metadata":[1,2]}"#,
    ))
    .await;
    assert!(matches!(
        client.list_certificates().await.unwrap_err(),
        Error::Malformed { .. }
    ));
}

#[tokio::test]
async fn html_error_pages() {
    check(http("502 Bad Gateway", "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"), |e| match e {
        // Tried again until the deadline, each attempt counted.
        Error::RetriesExhausted { attempts, last } => *attempts > 1 && matches!(&**last, Error::Api { status: 502, message } if message.contains("502 Bad Gateway")),
        _ => false,
    })
    .await;
    check(
        http("404 Not Found", "text/html", "<html>nope</html>"),
        |e| matches!(e, Error::Api { status: 404, .. }),
    )
    .await;
}

#[tokio::test]
async fn wrong_content_type_and_a_200_error_envelope() {
    check(http("200 OK", "text/plain", "hello"), |e| {
        matches!(e, Error::Malformed { status: 200, .. })
    })
    .await;
    check(
        http("200 OK", "application/json", r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":403,"error":"not authorized","metadata":null}"#),
        |e| matches!(e, Error::Api { message, .. } if message == "not authorized"),
    )
    .await;
}

#[tokio::test]
async fn a_huge_content_length_is_refused_before_reading() {
    let reply =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n{"
            .to_vec();
    check(reply, |e| matches!(e, Error::TooLarge(2_147_483_648))).await;
}

#[tokio::test]
async fn garbage_instead_of_http_and_a_dead_socket() {
    check(b"\x00\x01not http at all\r\n\r\n".to_vec(), |e| match e {
        Error::RetriesExhausted { last, .. } => last.is_transient(),
        _ => false,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(
        Target::Unix(dir.path().join("nothing.socket")),
        RetryPolicy {
            deadline: Duration::from_millis(50),
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            request_timeout: Duration::from_millis(100),
            create_attempts: 1,
        },
    );
    let err = client.server_info().await.unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { last, .. } if matches!(**last, Error::Connect { .. })),
        "{err:?}"
    );
    // The error names the socket and keeps the cause hyper wraps.
    let text = err.to_string();
    assert!(text.contains("cannot reach LXD at unix:"), "{text}");
    assert!(text.contains("nothing.socket"), "{text}");
    assert!(text.contains("No such file or directory"), "{text}");
}

#[tokio::test]
async fn redirects_are_refused_not_followed() {
    for status in [
        "301 Moved Permanently",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let reply = format!("HTTP/1.1 {status}\r\nlocation: https://elsewhere.example/1.0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").into_bytes();
        let (_dir, client) = canned(reply).await;
        let err = client.server_info().await.unwrap_err();
        assert!(
            matches!(&err, Error::Redirect { location: Some(l), .. } if l == "https://elsewhere.example/1.0"),
            "{status}: {err:?}"
        );
        // A create that meets a redirect is neither followed nor taken as ambiguous.
        assert!(!err.is_ambiguous() && !err.is_transient());
    }
}

#[tokio::test]
async fn replies_up_to_32_mib_are_read_and_longer_ones_refused() {
    // A long reply LXD could give (many operations), well over a mebibyte.
    let pad = "x".repeat(3 * 1024 * 1024);
    let body = format!(
        r#"{{"type":"sync","metadata":{{"auth":"trusted","api_extensions":["certificate_token"],"environment":{{"server":"lxd","server_version":"{pad}"}}}}}}"#
    );
    let (_dir, client) = canned(http("200 OK", "application/json", &body)).await;
    let info = client.server_info().await.unwrap();
    assert!(info.trusted && info.issues_tokens());
    let reply =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 33554433\r\n\r\n{"
            .to_vec();
    check(reply, |e| matches!(e, Error::TooLarge(33_554_433))).await;
}

/// A reply of exactly 32 MiB is read; one byte more is refused, whether the server says its
/// length or just sends until it closes.
#[tokio::test]
async fn the_32_mib_limit_is_exact() {
    let limit = lxd_client::transport::MAX_BODY;
    let head = r#"{"type":"sync","metadata":{"auth":"trusted","api_extensions":[],"environment":{"server":"lxd","server_version":""#;
    let tail = r#""}}}"#;
    let body = format!(
        "{head}{}{tail}",
        "x".repeat(limit - head.len() - tail.len())
    );
    assert_eq!(body.len(), limit);
    let (_dir, client) = canned(http("200 OK", "application/json", &body)).await;
    assert!(client.server_info().await.unwrap().trusted);

    let mut unsized_reply =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n".to_vec();
    unsized_reply.extend(std::iter::repeat_n(b' ', limit + 1));
    let (_dir, client) = canned(unsized_reply).await;
    let err = client.server_info().await.unwrap_err();
    assert!(
        matches!(err, Error::TooLarge(n) if n == limit as u64 + 1),
        "{err:?}"
    );
}
