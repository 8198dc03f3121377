//! The reads behind a token's status (`look_at_token`, `server_time`, `delete_certificate`)
//! against canned replies: malformed or partial replies are typed errors, never a guess.

use std::collections::BTreeMap;
use std::time::Duration;

use lxd_client::client::{TokenOperation, parse_http_date};
use lxd_client::{Client, Error, RetryPolicy, Target};
use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ID: &str = "38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1";
const DATE: &str = "Thu, 03 Dec 2026 10:05:49 GMT";

fn sync(metadata: &str) -> String {
    format!(
        r#"{{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{metadata}}}"#
    )
}

fn not_found() -> (u16, String) {
    (
        404,
        r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,"error":"Operation not found","metadata":null}"#.to_owned(),
    )
}

/// A server answering each path (without its query) from `routes`, with a `Date`.
async fn canned(routes: BTreeMap<&'static str, (u16, String)>) -> (tempfile::TempDir, Client) {
    canned_dated(routes, || DATE.to_owned()).await
}

/// As `canned`, with the `Date` that `date` gives at each answer.
async fn canned_dated(
    routes: BTreeMap<&'static str, (u16, String)>,
    date: fn() -> String,
) -> (tempfile::TempDir, Client) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let routes = routes.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let n = stream.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let target = head.split_whitespace().nth(1).unwrap_or("/");
                let route = target.split('?').next().unwrap_or("/");
                let (status, body) = routes.get(route).cloned().unwrap_or_else(not_found);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ndate: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    date(),
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
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

fn routes(certificates: &str, operation: Option<&str>) -> BTreeMap<&'static str, (u16, String)> {
    let mut routes = BTreeMap::from([
        (
            "/1.0",
            (
                200,
                sync(
                    r#"{"auth":"trusted","api_extensions":[],"environment":{"server":"lxd","server_version":"5.0.2"}}"#,
                ),
            ),
        ),
        ("/1.0/certificates", (200, sync(certificates))),
        ("/1.0/operations", (200, sync("{}"))),
    ]);
    if let Some(op) = operation {
        routes.insert(
            "/1.0/operations/38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1",
            (200, sync(op)),
        );
    }
    routes
}

const CANCELLED: &str = r#"{"id":"38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1","class":"token","created_at":"2026-12-03T10:00:00Z","status_code":401,"metadata":{"addresses":["a:1"],"fingerprint":"f","request":{"name":"t"},"secret":"s"}}"#;

#[tokio::test]
async fn a_look_reads_the_operation_the_clock_and_the_trust_store() {
    let certs = r#"[{"name":"t","fingerprint":"aa"},{"name":"other","fingerprint":"bb"}]"#;
    let (_dir, client) = canned(routes(certs, Some(CANCELLED))).await;
    let look = client.look_at_token(ID, "t").await.unwrap();
    assert_eq!(look.operation, TokenOperation::Finished);
    assert_eq!(look.server_time, datetime!(2026-12-03 10:05:49 UTC));
    assert_eq!(look.named.into_iter().collect::<Vec<_>>(), ["aa"]);
    let (_dir, client) = canned(routes("[]", None)).await;
    assert_eq!(
        client.look_at_token(ID, "t").await.unwrap().operation,
        TokenOperation::Gone
    );
    let kind = client.server_kind().await.unwrap();
    assert_eq!(
        (kind.server.as_str(), kind.version.as_str()),
        ("lxd", "5.0.2")
    );
}

#[tokio::test]
async fn malformed_or_partial_replies_are_errors() {
    for (certs, op) in [
        // A trust store that is not a list, or entries without a fingerprint.
        (r#"{"not":"a list"}"#, Some(CANCELLED)),
        (r#"[{"name":"t"}]"#, Some(CANCELLED)),
        // An operation without its id, or another operation's.
        ("[]", Some(r#"{"class":"token","status_code":103}"#)),
        ("[]", Some(&*CANCELLED.replace("38c4bd1a", "00000000"))),
    ] {
        let (_dir, client) = canned(routes(certs, op)).await;
        let err = client.look_at_token(ID, "t").await.unwrap_err();
        assert!(
            matches!(err, Error::Malformed { .. }),
            "{certs} {op:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn only_a_whole_fingerprint_is_deleted() {
    let (_dir, client) = canned(routes("[]", None)).await;
    let err = client.delete_certificate("aa").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("not a whole certificate fingerprint"),
        "{err}"
    );
    let whole = "a".repeat(64);
    assert!(
        !client.delete_certificate(&whole).await.unwrap(),
        "404: nothing deleted"
    );
}

#[test]
fn http_dates() {
    assert_eq!(
        parse_http_date(DATE),
        Some(datetime!(2026-12-03 10:05:49 UTC))
    );
    assert_eq!(parse_http_date("yesterday"), None);
}

/// The server's clock is its `Date`; when this machine's clock falls in that same second, it
/// gives the time to the nanosecond instead.
#[tokio::test]
async fn the_server_time_is_its_date_or_this_clock_within_that_second() {
    let (_dir, client) = canned(routes("[]", None)).await;
    assert_eq!(
        client.server_time().await.unwrap(),
        datetime!(2026-12-03 10:05:49 UTC)
    );
    fn now() -> String {
        let format = time::macros::format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        time::OffsetDateTime::now_utc().format(format).unwrap()
    }
    let (_dir, client) = canned_dated(routes("[]", None), now).await;
    // Read here, not rounded down to the `Date`'s whole second. A second may turn between
    // the server's `Date` and this clock's reading: one look of three is enough.
    let mut looks = Vec::new();
    for _ in 0..3 {
        let before = time::OffsetDateTime::now_utc();
        let seen = client.server_time().await.unwrap();
        let after = time::OffsetDateTime::now_utc();
        if before <= seen && seen <= after && seen.nanosecond() != 0 {
            return;
        }
        looks.push((before, seen, after));
    }
    panic!("never this clock's time: {looks:?}");
}

#[tokio::test]
async fn project_names_are_the_last_segments_of_the_project_urls() {
    let mut projects = routes("[]", None);
    projects.insert(
        "/1.0/projects",
        (
            200,
            sync(r#"["/1.0/projects/default","/1.0/projects/web?project=x","/1.0/projects/"]"#),
        ),
    );
    let (_dir, client) = canned(projects).await;
    assert_eq!(
        client
            .project_names()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        ["default", "web"]
    );
    let mut projects = routes("[]", None);
    projects.insert("/1.0/projects", (200, sync(r#"{"default":1}"#)));
    let (_dir, client) = canned(projects).await;
    let err = client.project_names().await.unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
}
