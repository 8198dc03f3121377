//! Differential test: the same request sequence against a real LXD 5.0.2 daemon and the fake,
//! compared after normalising ids, secrets, fingerprints, certificates, addresses and times.

mod common;

use std::path::PathBuf;

use common::{
    Cert, RealLxd, Reply, https_client, https_request, normalise, token_from_op, tool, unix_request,
};
use fake_lxd::{Config, FakeLxd};

/// Where the sequence is sent: a unix socket (trusted) and an HTTPS address.
struct Target {
    socket: PathBuf,
    https: String,
}

impl Target {
    async fn unix(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        unix_request(&self.socket, method, path, body).await
    }

    async fn https(
        &self,
        cert: Option<&Cert>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Reply {
        https_request(&https_client(cert), &self.https, method, path, body).await
    }
}

/// What a step leaves to compare: its label, status and normalised body.
type Step = (String, u16, String);

fn step(log: &mut Vec<Step>, label: &str, reply: &Reply) {
    eprintln!("{label}: {}", reply.status);
    log.push((label.to_owned(), reply.status, normalise(&reply.body)));
}

/// Lists without the short-lived `task` operations the real daemon runs at start-up and during
/// sweeps (they land in the `success`/`failure` buckets that token operations never use).
fn list_without_tasks(reply: &Reply) -> Reply {
    let mut v = reply.json();
    if let Some(buckets) = v["metadata"].as_object_mut() {
        buckets.remove("success");
        buckets.remove("failure");
    }
    Reply {
        body: v.to_string(),
        ..reply.clone()
    }
}

fn op_id(reply: &Reply) -> String {
    reply.json()["metadata"]["id"]
        .as_str()
        .expect("an operation id")
        .to_owned()
}

async fn sequence(t: &Target) -> Vec<Step> {
    let mut log = Vec::new();
    let s = &mut log;
    let addr_body = format!(r#"{{"config":{{"core.https_address":"{}"}}}}"#, t.https);
    step(
        s,
        "patch https address",
        &t.unix("PATCH", "/1.0", Some(&addr_body)).await,
    );

    // Untrusted views over HTTPS (the fake's extension list must be the real one).
    let stranger = Cert::generate("stranger");
    step(
        s,
        "untrusted GET /1.0",
        &t.https(Some(&stranger), "GET", "/1.0", None).await,
    );
    step(
        s,
        "untrusted GET /1.0 without cert",
        &t.https(None, "GET", "/1.0", None).await,
    );
    step(
        s,
        "untrusted list operations",
        &t.https(Some(&stranger), "GET", "/1.0/operations", None)
            .await,
    );
    step(
        s,
        "untrusted list operations recursion",
        &t.https(Some(&stranger), "GET", "/1.0/operations?recursion=1", None)
            .await,
    );
    step(
        s,
        "untrusted list certificates",
        &t.https(Some(&stranger), "GET", "/1.0/certificates", None)
            .await,
    );
    step(
        s,
        "untrusted create token",
        &t.https(
            Some(&stranger),
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"x","type":"client","token":true}"#),
        )
        .await,
    );

    // Creation, listing, reading.
    let plain = t
        .unix(
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"t-plain","type":"client","token":true}"#),
        )
        .await;
    step(s, "create plain", &plain);
    s.push((
        "create plain location".into(),
        0,
        normalise(plain.header("location").unwrap_or("<none>")),
    ));
    let plain_id = op_id(&plain);
    step(
        s,
        "list",
        &list_without_tasks(&t.unix("GET", "/1.0/operations", None).await),
    );
    step(
        s,
        "list recursion=1",
        &list_without_tasks(&t.unix("GET", "/1.0/operations?recursion=1", None).await),
    );
    step(
        s,
        "list project=default recursion=1",
        &list_without_tasks(
            &t.unix("GET", "/1.0/operations?project=default&recursion=1", None)
                .await,
        ),
    );
    step(
        s,
        "get plain",
        &t.unix("GET", &format!("/1.0/operations/{plain_id}"), None)
            .await,
    );
    let restricted = t.unix("POST", "/1.0/certificates?project=default", Some(r#"{"name":"t-restr","type":"client","token":true,"restricted":true,"projects":["default"]}"#)).await;
    step(s, "create restricted", &restricted);
    let restricted_op = restricted.json()["metadata"].clone();
    step(s, "create projects null", &t.unix("POST", "/1.0/certificates", Some(r#"{"name":"t-null","type":"client","restricted":false,"projects":null,"token":true}"#)).await);

    // Revocation.
    step(
        s,
        "revoke plain",
        &t.unix("DELETE", &format!("/1.0/operations/{plain_id}"), None)
            .await,
    );
    step(
        s,
        "get revoked",
        &t.unix("GET", &format!("/1.0/operations/{plain_id}"), None)
            .await,
    );
    step(
        s,
        "revoke twice",
        &t.unix("DELETE", &format!("/1.0/operations/{plain_id}"), None)
            .await,
    );
    step(
        s,
        "get unknown operation",
        &t.unix(
            "GET",
            "/1.0/operations/38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1",
            None,
        )
        .await,
    );
    step(
        s,
        "revoke unknown operation",
        &t.unix(
            "DELETE",
            "/1.0/operations/38c4bd1a-6f72-4d2b-b5bf-e1d99aaf62c1",
            None,
        )
        .await,
    );
    step(
        s,
        "get non-uuid operation",
        &t.unix("GET", "/1.0/operations/nope", None).await,
    );

    // Bad bodies.
    for (label, body) in [
        ("bad json", "{bad json"),
        ("array body", "[]"),
        ("number name", r#"{"name":5,"type":"client","token":true}"#),
        (
            "string token",
            r#"{"name":"x","type":"client","token":"yes"}"#,
        ),
        (
            "string projects",
            r#"{"name":"x","type":"client","token":true,"projects":"default"}"#,
        ),
        ("empty body", ""),
        (
            "metrics type",
            r#"{"name":"x","type":"metrics","token":true}"#,
        ),
        ("missing type", r#"{"name":"x","token":true}"#),
    ] {
        step(
            s,
            label,
            &t.unix("POST", "/1.0/certificates", Some(body)).await,
        );
    }
    for (label, body) in [
        (
            "bogus expiry",
            r#"{"config":{"core.remote_token_expiry":"bogus"}}"#,
        ),
        (
            "lower-case expiry unit",
            r#"{"config":{"core.remote_token_expiry":"10s"}}"#,
        ),
        (
            "unknown config key",
            r#"{"config":{"core.remote_token_expirx":"20M"}}"#,
        ),
        ("bad config json", "{bad"),
    ] {
        step(s, label, &t.unix("PATCH", "/1.0", Some(body)).await);
    }
    step(s, "unknown path", &t.unix("GET", "/1.0/nosuch", None).await);
    step(s, "versions", &t.unix("GET", "/", None).await);
    step(s, "projects", &t.unix("GET", "/1.0/projects", None).await);
    step(
        s,
        "default project",
        &t.unix("GET", "/1.0/projects/default", None).await,
    );
    step(
        s,
        "unknown project",
        &t.unix("GET", "/1.0/projects/nope", None).await,
    );
    step(
        s,
        "POST operations",
        &t.unix("POST", "/1.0/operations", Some("{}")).await,
    );
    step(
        s,
        "events without upgrade",
        &t.unix("GET", "/1.0/events?project=default", None).await,
    );

    // Consumption over HTTPS.
    let restricted_token = token_from_op(&restricted_op);
    let alice = Cert::generate("alice");
    let consume = |token: &str| format!(r#"{{"type":"client","password":"{token}"}}"#);
    let consumed = t
        .https(
            Some(&alice),
            "POST",
            "/1.0/certificates",
            Some(&consume(&restricted_token)),
        )
        .await;
    step(s, "consume", &consumed);
    s.push((
        "consume location".into(),
        0,
        normalise(consumed.header("location").unwrap_or("<none>")),
    ));
    step(
        s,
        "consume twice, other cert",
        &t.https(
            Some(&Cert::generate("bob")),
            "POST",
            "/1.0/certificates",
            Some(&consume(&restricted_token)),
        )
        .await,
    );
    step(
        s,
        "consume twice, same cert",
        &t.https(
            Some(&alice),
            "POST",
            "/1.0/certificates",
            Some(&consume(&restricted_token)),
        )
        .await,
    );
    step(
        s,
        "restricted client lists certificates",
        &t.https(Some(&alice), "GET", "/1.0/certificates", None)
            .await,
    );
    step(
        s,
        "restricted client creates a token",
        &t.https(
            Some(&alice),
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"y","type":"client","token":true}"#),
        )
        .await,
    );
    let certs = t.unix("GET", "/1.0/certificates?recursion=1", None).await;
    step(s, "certificates recursion=1", &certs);
    step(
        s,
        "certificates",
        &t.unix("GET", "/1.0/certificates", None).await,
    );
    let fingerprint = certs.json()["metadata"][0]["fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    step(
        s,
        "get certificate",
        &t.unix("GET", &format!("/1.0/certificates/{fingerprint}"), None)
            .await,
    );
    step(
        s,
        "get certificate by prefix",
        &t.unix(
            "GET",
            &format!(
                "/1.0/certificates/{}",
                &fingerprint[..12.min(fingerprint.len())]
            ),
            None,
        )
        .await,
    );
    step(
        s,
        "get unknown certificate",
        &t.unix("GET", "/1.0/certificates/0000000000000000", None)
            .await,
    );

    // Tokens that cannot be consumed.
    let unusable = t
        .unix(
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"t-raw","type":"client","token":true}"#),
        )
        .await;
    let unusable_op = unusable.json()["metadata"].clone();
    let secret = unusable_op["metadata"]["secret"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    step(
        s,
        "consume raw secret",
        &t.https(
            Some(&Cert::generate("carol")),
            "POST",
            "/1.0/certificates",
            Some(&consume(&secret)),
        )
        .await,
    );
    step(
        s,
        "consume with trust_token field",
        &t.https(
            Some(&Cert::generate("carol")),
            "POST",
            "/1.0/certificates",
            Some(&format!(
                r#"{{"type":"client","trust_token":"{}"}}"#,
                token_from_op(&unusable_op)
            )),
        )
        .await,
    );
    step(
        s,
        "consume without a client certificate",
        &t.https(
            None,
            "POST",
            "/1.0/certificates",
            Some(&consume(&token_from_op(&unusable_op))),
        )
        .await,
    );
    step(
        s,
        "token burnt by the certificate-less attempt",
        &t.unix(
            "GET",
            &format!(
                "/1.0/operations/{}",
                unusable_op["id"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await,
    );

    // Expiry: "0M" yields tokens that are expired at once, without waiting.
    step(
        s,
        "set expiry 0M",
        &t.unix(
            "PATCH",
            "/1.0",
            Some(r#"{"config":{"core.remote_token_expiry":"0M"}}"#),
        )
        .await,
    );
    let expired = t
        .unix(
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"t-exp","type":"client","token":true}"#),
        )
        .await;
    step(s, "create with expiry", &expired);
    let expired_op = expired.json()["metadata"].clone();
    let dave = Cert::generate("dave");
    step(
        s,
        "consume expired",
        &t.https(
            Some(&dave),
            "POST",
            "/1.0/certificates",
            Some(&consume(&token_from_op(&expired_op))),
        )
        .await,
    );
    step(
        s,
        "consume expired again",
        &t.https(
            Some(&dave),
            "POST",
            "/1.0/certificates",
            Some(&consume(&token_from_op(&expired_op))),
        )
        .await,
    );
    step(
        s,
        "expired token cancelled",
        &t.unix(
            "GET",
            &format!(
                "/1.0/operations/{}",
                expired_op["id"].as_str().unwrap_or_default()
            ),
            None,
        )
        .await,
    );
    step(
        s,
        "set expiry 10S",
        &t.unix(
            "PATCH",
            "/1.0",
            Some(r#"{"config":{"core.remote_token_expiry":"10S"}}"#),
        )
        .await,
    );
    let ten = t
        .unix(
            "POST",
            "/1.0/certificates",
            Some(r#"{"name":"t-10s","type":"client","token":true}"#),
        )
        .await;
    step(s, "create with 10S expiry", &ten);
    step(
        s,
        "consume before expiry",
        &t.https(
            Some(&Cert::generate("erin")),
            "POST",
            "/1.0/certificates",
            Some(&consume(&token_from_op(&ten.json()["metadata"]))),
        )
        .await,
    );
    step(
        s,
        "unset expiry",
        &t.unix(
            "PATCH",
            "/1.0",
            Some(r#"{"config":{"core.remote_token_expiry":""}}"#),
        )
        .await,
    );
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_answers_like_the_real_daemon() {
    let Some(lxd) = tool("XTASK_LXD") else { return };
    let real = RealLxd::start(&lxd);
    let fake = FakeLxd::start(Config {
        https_address_set: false,
        ..Config::for_testing()
    })
    .await
    .expect("fake starts");

    let real_target = Target {
        socket: real.socket(),
        https: real.https.clone(),
    };
    let fake_target = Target {
        socket: fake.unix_socket().to_owned(),
        https: fake.https_addr().to_string(),
    };
    let expected = sequence(&real_target).await;
    let actual = sequence(&fake_target).await;

    let mut differences = Vec::new();
    for (want, got) in expected.iter().zip(&actual) {
        if want != got {
            differences.push(format!(
                "step {:?}\n  real: {} {}\n  fake: {} {}",
                want.0, want.1, want.2, got.1, got.2
            ));
        }
    }
    assert_eq!(expected.len(), actual.len());
    assert!(
        differences.is_empty(),
        "{} of {} steps differ:\n{}",
        differences.len(),
        expected.len(),
        differences.join("\n")
    );
}
