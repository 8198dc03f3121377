//! The published OCI signing vectors (and generated auth-token ones) verify in the fake's
//! verifier; tampered variants do not.

use std::path::Path;

use fake_oci::signature::{AuthError, SignedRequest, fingerprint, parse_http_date, verify};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/oci/signing-vectors")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key() -> RsaPublicKey {
    RsaPublicKey::from_public_key_pem(&fixture("test_key_public_spki.pem")).unwrap()
}

struct Vector {
    name: String,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn vectors(file: &str) -> Vec<Vector> {
    let doc: serde_json::Value = serde_json::from_str(&fixture(file)).unwrap();
    let mut out = Vec::new();
    for v in doc["vectors"].as_array().unwrap() {
        let url = reqwest::Url::parse(v["url"].as_str().unwrap()).unwrap();
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap()),
            None => url.host_str().unwrap().to_owned(),
        };
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let body = match (v.get("body"), v.get("body_file")) {
            (Some(serde_json::Value::String(b)), _) => b.as_bytes().to_vec(),
            (_, Some(serde_json::Value::String(f))) => fixture(f).into_bytes(),
            _ => Vec::new(),
        };
        let mut headers = vec![
            (
                "date".to_owned(),
                v["date_header"].as_str().unwrap().to_owned(),
            ),
            ("host".to_owned(), host),
        ];
        if !body.is_empty() || v["method"] != "GET" && v["method"] != "DELETE" {
            headers.push(("content-length".into(), body.len().to_string()));
            headers.push(("content-type".into(), "application/json".into()));
            headers.push((
                "x-content-sha256".into(),
                v["x_content_sha256"].as_str().unwrap().to_owned(),
            ));
        }
        for order in [
            "authorization_python_sdk_order",
            "authorization_go_sdk_order",
        ] {
            let Some(auth) = v.get(order).and_then(|a| a.as_str()) else {
                continue;
            };
            let mut h = headers.clone();
            h.push(("authorization".into(), auth.to_owned()));
            out.push(Vector {
                name: format!("{} ({order})", v["name"].as_str().unwrap()),
                method: v["method"].as_str().unwrap().to_owned(),
                target: target.clone(),
                headers: h,
                body: body.clone(),
            });
        }
    }
    out
}

/// Verifies `vector` at the time of its own `date` header.
fn check(vector: &Vector) -> Result<(), AuthError> {
    check_at(vector, date_of(vector))
}

fn date_of(vector: &Vector) -> time::OffsetDateTime {
    vector
        .headers
        .iter()
        .find(|(n, _)| n == "date")
        .map(|(_, v)| parse_http_date(v).unwrap())
        .unwrap()
}

#[test]
fn the_test_key_has_the_documented_real_fingerprint() {
    assert_eq!(
        fingerprint(&key()),
        "73:61:a2:21:67:e0:df:be:7e:4b:93:1e:15:98:a5:b7"
    );
}

#[test]
fn published_and_generated_vectors_verify() {
    let all: Vec<Vector> = vectors("doc_vectors.json")
        .into_iter()
        .chain(vectors("auth_token_vectors_generated.json"))
        .collect();
    assert!(all.len() >= 10, "found only {} vectors", all.len());
    for vector in &all {
        assert_eq!(check(vector), Ok(()), "{}", vector.name);
    }
}

#[test]
fn tampered_vectors_fail() {
    for vector in vectors("doc_vectors.json")
        .into_iter()
        .chain(vectors("auth_token_vectors_generated.json"))
    {
        let mut target = vector.target.clone();
        target.push('x');
        let tampered = Vector {
            target,
            ..clone(&vector)
        };
        assert_eq!(
            check(&tampered),
            Err(AuthError::BadSignature),
            "{}",
            vector.name
        );
        if !vector.body.is_empty() {
            let mut body = vector.body.clone();
            body[0] ^= 1;
            assert_eq!(
                check(&Vector {
                    body,
                    ..clone(&vector)
                }),
                Err(AuthError::BodyHash),
                "{}",
                vector.name
            );
        }
        let mut headers = vector.headers.clone();
        for (n, v) in &mut headers {
            if n == "host" {
                v.push_str(".evil");
            }
        }
        assert_eq!(
            check(&Vector {
                headers,
                ..clone(&vector)
            }),
            Err(AuthError::BadSignature),
            "{}",
            vector.name
        );
    }
}

fn clone(v: &Vector) -> Vector {
    Vector {
        name: v.name.clone(),
        method: v.method.clone(),
        target: v.target.clone(),
        headers: v.headers.clone(),
        body: v.body.clone(),
    }
}

fn check_at(vector: &Vector, now: time::OffsetDateTime) -> Result<(), AuthError> {
    let req = SignedRequest {
        method: &vector.method,
        target: &vector.target,
        headers: vector.headers.clone(),
        body: &vector.body,
    };
    // The documented keyId carries a placeholder fingerprint, so the key is looked up by the
    // keyId's own fingerprint here.
    verify(&req, |_| Some(key()), now).map(|_| ())
}

#[test]
fn another_algorithm_or_version_is_refused() {
    let vector = &vectors("doc_vectors.json")[0];
    let auth = |headers: &[(String, String)]| {
        headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1
            .clone()
    };
    let original = auth(&vector.headers);
    assert!(original.contains(r#"algorithm="rsa-sha256""#), "{original}");
    assert!(original.contains(r#"version="1""#), "{original}");
    for (from, to) in [
        (r#"algorithm="rsa-sha256""#, r#"algorithm="rsa-sha512""#),
        (r#"version="1""#, r#"version="2""#),
    ] {
        let mut headers = vector.headers.clone();
        for (n, v) in &mut headers {
            if n == "authorization" {
                *v = v.replace(from, to);
            }
        }
        let changed = Vector {
            headers,
            ..clone(vector)
        };
        assert_eq!(check(&changed), Err(AuthError::Algorithm), "{to}");
    }
}

#[test]
fn dates_up_to_five_minutes_off_are_accepted() {
    let vector = &vectors("doc_vectors.json")[0];
    let date = date_of(vector);
    let five = time::Duration::minutes(5);
    let second = time::Duration::SECOND;
    assert_eq!(check_at(vector, date + five), Ok(()));
    assert_eq!(check_at(vector, date - five), Ok(()));
    assert_eq!(check_at(vector, date + five + second), Err(AuthError::Date));
    assert_eq!(check_at(vector, date - five - second), Err(AuthError::Date));
}

#[test]
fn a_session_key_id_without_a_token_is_malformed() {
    let vector = &vectors("doc_vectors.json")[0];
    let mut headers = vector.headers.clone();
    for (n, v) in &mut headers {
        if n == "authorization" {
            let start = v.find("keyId=\"").unwrap() + "keyId=\"".len();
            let end = start + v[start..].find('"').unwrap();
            v.replace_range(start..end, "ST$");
        }
    }
    let changed = Vector {
        headers,
        ..clone(vector)
    };
    assert_eq!(check(&changed), Err(AuthError::Malformed));
}
