//! The decoders fed arbitrary input: token strings, lxc's `config.yml`, and LXD replies served
//! raw over a unix socket. Each answers with a value or an error, never a panic.

use std::time::Duration;

use lxd_client::config::ConfigDir;
use lxd_client::{Client, RetryPolicy, SecretString, Target};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes that look like a token now and then: base64 of JSON fragments, or anything.
fn token_text() -> impl Strategy<Value = String> {
    use base64::Engine;
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        "[{}\":,a-z0-9 \\[\\]]{0,120}"
            .prop_map(|j| base64::engine::general_purpose::STANDARD.encode(j)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn token_strings(text in token_text()) {
        let _ = lxd_client::token::decode(&SecretString::from(text));
    }

    #[test]
    fn lxc_config_files(text in prop_oneof![any::<String>(), "[a-z:\\- \n\"{}\\[\\],]{0,200}"]) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.yml"), &text).unwrap();
        if let Ok(config) = ConfigDir::load(dir.path()) {
            let _ = config.default_remote();
            for name in config.config.remotes.keys() {
                let _ = config.target(name, &|_| None, false);
            }
        }
    }
}

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
        deadline: Duration::from_millis(5),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(1),
        request_timeout: Duration::from_millis(500),
        create_attempts: 1,
    };
    (dir, Client::new(Target::Unix(path), retry))
}

/// JSON that is shaped like LXD's envelopes often enough to reach the inner decoders.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("sync".to_owned()),
            Just("token".to_owned()),
            Just("2026-11-23T04:58:38.869165344Z".to_owned()),
            Just("38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1".to_owned()),
            "[a-z0-9:/.-]{0,20}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("type"),
        Just("metadata"),
        Just("error"),
        Just("id"),
        Just("class"),
        Just("created_at"),
        Just("status_code"),
        Just("request"),
        Just("secret"),
        Just("name"),
        Just("projects"),
        Just("running"),
        Just("api_extensions"),
        Just("auth"),
        Just("expiresAt"),
        Just("addresses"),
        Just("fingerprint"),
    ];
    let json = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    });
    prop_oneof![
        3 => json.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn lxd_replies() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    proptest!(ProptestConfig::with_cases(128), |(status in prop_oneof![Just(200u16), Just(202), Just(404), Just(500)], body in body())| {
        runtime.block_on(async {
            let mut reply = format!("HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len()).into_bytes();
            reply.extend_from_slice(&body);
            let (_dir, client) = canned(reply).await;
            let _ = client.server_info().await;
            let _ = client.list_tokens().await;
            let _ = client.get_token("38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1").await;
            let _ = client.list_certificates().await;
            let _ = client.create_token("t", &[]).await;
        });
    });
}
