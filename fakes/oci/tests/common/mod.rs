//! Test helpers: a minimal request signer (test code only; the library has none) and a client.

#![allow(dead_code)]

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fake_oci::FakeOci;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer as _};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// An external tool from `cargo xtask test`, or `None` (with a note) when run another way.
pub fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("XTASK_REQUIRE_TOOLS").is_some() => {
            panic!("{var} not set (run through cargo xtask test)")
        }
        None => {
            eprintln!("skipped: {var} not set (run through cargo xtask test)");
            None
        }
    }
}

pub fn http_date(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.format(format).unwrap()
}

pub struct Signer {
    pub key_id: String,
    key: RsaPrivateKey,
}

impl Signer {
    pub fn new(tenancy: &str, user: &str, fingerprint: &str, private_pem: &str) -> Signer {
        Signer {
            key_id: format!("{tenancy}/{user}/{fingerprint}"),
            key: RsaPrivateKey::from_pkcs8_pem(private_pem).unwrap(),
        }
    }

    pub fn for_fake(fake: &FakeOci) -> Signer {
        let id = fake.test_identity();
        Signer::new(&id.tenancy, &id.user, &id.fingerprint, &id.private_key_pem)
    }

    /// The headers of a signed request (`host` and `date` included).
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        body: &[u8],
        date: OffsetDateTime,
    ) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(url).unwrap();
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap()),
            None => url.host_str().unwrap().to_owned(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut headers = vec![
            ("date".to_owned(), http_date(date)),
            (
                "(request-target)".to_owned(),
                format!("{} {target}", method.to_ascii_lowercase()),
            ),
            ("host".to_owned(), host),
        ];
        if matches!(method, "POST" | "PUT" | "PATCH") {
            headers.push(("content-length".into(), body.len().to_string()));
            headers.push(("content-type".into(), "application/json".into()));
            headers.push((
                "x-content-sha256".into(),
                STANDARD.encode(Sha256::digest(body)),
            ));
        }
        let signing_string = headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect::<Vec<_>>()
            .join("\n");
        let names = headers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let signature = SigningKey::<Sha256>::new(self.key.clone()).sign(signing_string.as_bytes());
        let authorization = format!(
            "Signature version=\"1\",headers=\"{names}\",keyId=\"{}\",algorithm=\"rsa-sha256\",signature=\"{}\"",
            self.key_id,
            STANDARD.encode(signature.to_bytes())
        );
        headers.retain(|(n, _)| n != "(request-target)");
        headers.push(("authorization".into(), authorization));
        headers
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

pub async fn send(
    signer: &Signer,
    method: &str,
    url: &str,
    body: Option<&str>,
    extra: &[(&str, &str)],
    date: OffsetDateTime,
) -> Reply {
    let bytes = body.unwrap_or("").as_bytes().to_vec();
    let headers = signer.headers(method, url, &bytes, date);
    send_raw(method, url, bytes, &headers, extra).await
}

pub async fn send_raw(
    method: &str,
    url: &str,
    body: Vec<u8>,
    headers: &[(String, String)],
    extra: &[(&str, &str)],
) -> Reply {
    let client = reqwest::Client::new();
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (n, v) in headers {
        if n != "host" && n != "content-length" {
            req = req.header(n, v);
        }
    }
    for (n, v) in extra {
        req = req.header(*n, *v);
    }
    let resp = req.body(body).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

pub fn tokens_url(fake: &FakeOci, user: &str) -> String {
    format!("{}/20160918/users/{user}/authTokens", fake.endpoint())
}
