//! Every operation against an in-process fake-lxd, both profiles and both transports.

use std::time::Duration;

use fake_lxd::faults::{Action, ResetWhen, Rule};
use fake_lxd::{ClientCert, Config, FakeLxd, Profile};
use lxd_client::config::ConfigDir;
use lxd_client::{
    Client, ClientIdentity, Error, ExposeSecret, Generation, RetryPolicy, SecretString,
    ServerTrust, Target,
};

fn fast() -> RetryPolicy {
    RetryPolicy {
        deadline: Duration::from_secs(2),
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
        request_timeout: Duration::from_secs(2),
        create_attempts: 3,
    }
}

async fn fake(profile: Profile) -> FakeLxd {
    FakeLxd::start(Config {
        profile,
        ..Config::for_testing()
    })
    .await
    .unwrap()
}

fn unix(fake: &FakeLxd) -> Client {
    unix_with(fake, fast())
}

/// A client of `fake` over its unix socket, retrying by `policy`.
fn unix_with(fake: &FakeLxd, policy: RetryPolicy) -> Client {
    Client::new(Target::Unix(fake.unix_socket().to_owned()), policy)
}

fn identity(cert: &ClientCert) -> ClientIdentity {
    ClientIdentity {
        cert_pem: cert.cert_pem.clone(),
        key_pem: SecretString::from(cert.key_pem.clone()),
    }
}

#[tokio::test]
async fn token_lifecycle_over_the_unix_socket_in_both_profiles() {
    for profile in [Profile::V5_0, Profile::V6] {
        let fake = fake(profile).await;
        let client = unix(&fake);
        let info = client.server_info().await.unwrap();
        assert!(info.trusted);
        assert_eq!(
            info.generation(),
            if profile == Profile::V6 {
                Generation::TrustToken
            } else {
                Generation::Password
            }
        );

        let plain = client.create_token("plain", &[]).await.unwrap();
        let restricted = client
            .create_token("restricted", &["default".to_owned()])
            .await
            .unwrap();
        assert!(restricted.restricted && !plain.restricted);
        // Newer LXD (6.7+) gives tokens a 15-day expiry when none is configured.
        let default_expiry =
            (profile == Profile::V6).then(|| plain.created_at + time::Duration::days(15));
        assert_eq!(plain.expires_at, default_expiry);
        // The token string is the one lxc would print: the fake's own rendering matches.
        let pending = fake.control().pending_tokens();
        assert!(
            pending
                .iter()
                .any(|(id, t)| id == &plain.operation_id && t == plain.token.expose_secret()),
            "{profile:?}"
        );

        let listed = client.list_tokens().await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["plain", "restricted"]
        );
        assert_eq!(
            client
                .get_token(&plain.operation_id)
                .await
                .unwrap()
                .unwrap()
                .token
                .expose_secret(),
            plain.token.expose_secret()
        );

        assert!(client.revoke(&plain.operation_id).await.unwrap());
        assert_eq!(
            client.get_token(&plain.operation_id).await.unwrap(),
            None,
            "a cancelled token is not pending"
        );
        assert!(!client.revoke(&plain.operation_id).await.unwrap());
        assert_eq!(
            client
                .get_token("00000000-0000-4000-8000-000000000000")
                .await
                .unwrap(),
            None
        );
        assert_eq!(client.list_tokens().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn expiry_is_reported() {
    let fake = fake(Profile::V5_0).await;
    fake.control()
        .set_config("core.remote_token_expiry", "20M")
        .unwrap();
    let client = unix(&fake);
    let token = client.create_token("expiring", &[]).await.unwrap();
    assert_eq!(
        token.expires_at,
        Some(fake_lxd::TEST_EPOCH + time::Duration::minutes(20))
    );
    assert_eq!(
        client
            .server_info()
            .await
            .unwrap()
            .remote_token_expiry
            .as_deref(),
        Some("20M")
    );
}

#[tokio::test]
async fn joining_over_https_with_a_token_in_both_profiles() {
    for profile in [Profile::V5_0, Profile::V6] {
        let fake = fake(profile).await;
        let token = unix(&fake).create_token("joiner", &[]).await.unwrap();
        let data = lxd_client::token::decode(&token.token).unwrap();
        assert_eq!(data.fingerprint, fake.server_fingerprint());
        assert_eq!(data.addresses, [fake.https_addr().to_string()]);

        let cert = ClientCert::generate("joiner");
        let target = Target::https(
            &data.addresses[0],
            &ServerTrust::Pinned(data.fingerprint.clone()),
            Some(&identity(&cert)),
        )
        .unwrap();
        assert_eq!(target.seen_fingerprint(), None, "no connection yet");
        let remote = Client::new(target.clone(), fast());
        assert!(!remote.server_info().await.unwrap().trusted);
        assert_eq!(
            target.seen_fingerprint().as_deref(),
            Some(fake.server_fingerprint()),
            "the certificate of the last connection"
        );
        assert_eq!(
            Target::Unix(fake.unix_socket().to_owned()).seen_fingerprint(),
            None
        );
        remote.consume_token(&token.token).await.unwrap();
        let state = fake.control().state();
        assert_eq!(
            state["certificates"][0]["fingerprint"],
            cert.fingerprint.as_str(),
            "{profile:?}"
        );

        // The same client, now trusted, sees the certificates; a second use is refused.
        let trusted = Client::new(
            Target::https(
                &data.addresses[0],
                &ServerTrust::Pinned(data.fingerprint.clone()),
                Some(&identity(&cert)),
            )
            .unwrap(),
            fast(),
        );
        assert!(trusted.server_info().await.unwrap().trusted);
        assert_eq!(trusted.list_certificates().await.unwrap()[0].name, "joiner");
        let other = ClientCert::generate("other");
        let again = Client::new(
            Target::https(
                &data.addresses[0],
                &ServerTrust::Pinned(data.fingerprint),
                Some(&identity(&other)),
            )
            .unwrap(),
            fast(),
        );
        let err = again.consume_token(&token.token).await.unwrap_err();
        assert!(
            matches!(&err, Error::Refused { status: 403, message } if message.contains("already used")),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_wrong_pinned_certificate_is_refused() {
    let fake = fake(Profile::V5_0).await;
    let target = Target::https(
        &fake.https_addr().to_string(),
        &ServerTrust::Pinned("00".repeat(32)),
        None,
    )
    .unwrap();
    let err = Client::new(target, fast()).server_info().await.unwrap_err();
    assert!(
        matches!(err, Error::ServerCertificate { ref actual, .. } if actual == fake.server_fingerprint()),
        "{err}"
    );
}

#[tokio::test]
async fn refusals_say_what_to_do() {
    let fake = FakeLxd::start(Config {
        https_address_set: false,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    let err = unix(&fake).create_token("t", &[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::Refused { status: 400, message } if message.contains("core.https_address")),
        "{err}"
    );
}

#[tokio::test]
async fn an_ambiguous_create_is_reconciled_not_repeated() {
    let fake = fake(Profile::V5_0).await;
    let control = fake.control();
    // A short deadline: the failures below are watched until it passes.
    let client = unix_with(
        &fake,
        RetryPolicy {
            deadline: Duration::from_millis(300),
            ..fast()
        },
    );
    let post_fault = |action| Rule {
        method: "POST".into(),
        path: "/1.0/certificates".into(),
        times: Some(1),
        action,
    };
    // The server creates the token, then the connection drops before the answer.
    control.add_fault(post_fault(Action::Reset {
        reset: ResetWhen::After,
    }));
    let adopted = client.create_token("lost-reply", &[]).await.unwrap();
    let pending = control.pending_tokens();
    assert_eq!(pending.len(), 1, "no second token");
    assert_eq!(pending[0].0, adopted.operation_id);
    // A 5xx is no proof that nothing happened (a proxy may answer 502 after forwarding): the
    // create is not sent again; nothing appears, so the client reports the failure.
    control.add_fault(post_fault(Action::Status {
        status: 503,
        body: None,
        headers: None,
    }));
    let err = client.create_token("unavailable", &[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { last, .. } if matches!(**last, Error::Api { status: 503, .. })),
        "{err}"
    );
    assert_eq!(control.pending_tokens().len(), 1, "nothing was created");
    // The connection drops after sending and nothing appears: the client cannot know whether
    // the server acted, so it never sends the create again; it reports the failure.
    control.add_fault(post_fault(Action::Reset {
        reset: ResetWhen::Before,
    }));
    let err = client.create_token("dropped", &[]).await.unwrap_err();
    assert!(
        matches!(&err, Error::RetriesExhausted { last, .. } if last.is_ambiguous()),
        "{err}"
    );
    assert_eq!(control.pending_tokens().len(), 1, "nothing was created");
    let posts = control
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 3, "one POST per create, never a second");
    assert!(
        control.requests().iter().all(|r| r.method != "DELETE"),
        "a create revokes nothing"
    );
}

#[tokio::test]
async fn operation_ids_that_are_not_uuids_are_refused_before_any_request() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let token = client.create_token("kept", &[]).await.unwrap();
    let before = fake.control().requests().len();
    for id in [
        "..",
        ".",
        "../certificates",
        "%2e%2e",
        "",
        "not-a-uuid",
        "00000000-0000-4000-8000-000000000000/wait",
        "00000000-0000-4000-8000-000000000000?project=other",
    ] {
        let err = client.get_token(id).await.unwrap_err();
        assert!(matches!(err, Error::BadOperationId(_)), "{id:?}: {err}");
        let err = client.revoke(id).await.unwrap_err();
        assert!(matches!(err, Error::BadOperationId(_)), "{id:?}: {err}");
    }
    assert_eq!(fake.control().requests().len(), before, "nothing was sent");
    assert_eq!(fake.control().pending_tokens().len(), 1);
    assert!(client.revoke(&token.operation_id).await.unwrap());
}

#[tokio::test]
async fn lxc_config_directories() {
    let fake = fake(Profile::V5_0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = ConfigDir::load(dir.path()).unwrap();
    assert_eq!(config.default_remote(), "local");
    let identity = config.ensure_client_identity().unwrap();
    assert_eq!(
        config.ensure_client_identity().unwrap().cert_pem,
        identity.cert_pem,
        "generated once"
    );

    let token = unix(&fake).create_token("from-config", &[]).await.unwrap();
    let data = lxd_client::token::decode(&token.token).unwrap();
    config
        .add_remote(
            "r1",
            &format!("https://{}", data.addresses[0]),
            Some(fake.server_cert_pem()),
        )
        .unwrap();
    let reloaded = ConfigDir::load(dir.path()).unwrap();
    assert_eq!(
        reloaded.server_fingerprint("r1").as_deref(),
        Some(fake.server_fingerprint())
    );
    let client = Client::new(reloaded.target("r1", &|_| None, false).unwrap(), fast());
    client.consume_token(&token.token).await.unwrap();
    assert!(client.server_info().await.unwrap().trusted);
    let err = reloaded.target("nope", &|_| None, false).unwrap_err();
    assert!(err.to_string().contains("no remote \"nope\""), "{err}");
    let local = reloaded
        .target(
            "local",
            &|k| (k == "LXD_DIR").then(|| "/srv/lxd".to_owned()),
            false,
        )
        .unwrap();
    assert_eq!(format!("{local:?}"), "unix:/srv/lxd/unix.socket");
}

#[test]
fn a_fixture_lxc_config_directory() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/lxd-client/lxc-config");
    let config = ConfigDir::load(&dir).unwrap();
    assert_eq!(config.default_remote(), "prod");
    assert_eq!(config.config.remotes.len(), 4);
    let expected = std::fs::read_to_string(dir.join("servercerts/prod.sha256")).unwrap();
    assert_eq!(
        config.server_fingerprint("prod").as_deref(),
        Some(expected.trim())
    );
    assert!(
        config.client_identity().unwrap().is_none(),
        "no client.crt in the fixture"
    );
    // HTTPS remotes are pinned from servercerts/; unix remotes name their socket.
    assert_eq!(
        format!("{:?}", config.target("prod", &|_| None, false).unwrap()),
        "https://10.1.1.8:8443"
    );
    assert_eq!(
        format!("{:?}", config.target("socket", &|_| None, false).unwrap()),
        "unix:/srv/lxd/unix.socket"
    );
    assert_eq!(
        format!(
            "{:?}",
            config
                .target(
                    "local",
                    &|k| (k == "LXD_SOCKET").then(|| "/run/x.socket".to_owned()),
                    false
                )
                .unwrap()
        ),
        "unix:/run/x.socket"
    );
    // A remote without a pinned certificate is refused unless accepted explicitly.
    let err = config.target("images", &|_| None, false).unwrap_err();
    assert!(
        err.to_string().contains("no pinned server certificate"),
        "{err}"
    );
    assert!(config.target("images", &|_| None, true).is_ok());
}

/// The `GET`s of `path` (any query) the fake has answered so far.
fn gets(fake: &FakeLxd, path: &str) -> usize {
    fake.control()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == path)
        .count()
}

/// The `GET /1.0/operations` listings the fake has answered so far.
fn operation_listings(fake: &FakeLxd) -> usize {
    gets(fake, "/1.0/operations")
}

async fn look(client: &Client, id: &str) -> lxd_client::client::TokenLook {
    client.look_at_token(id, "same").await.unwrap()
}

/// Finished token operations stay listed for a while (LXD keeps them, and so does the fake on
/// its manual clock) with their request and secret; neither a used nor a revoked one is a
/// pending token, in the list or in a listing's record of a name.
#[tokio::test]
async fn finished_tokens_are_listed_by_the_server_but_not_pending() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let used = client.create_token("gone", &[]).await.unwrap();
    let revoked = client.create_token("gone", &[]).await.unwrap();
    let pending = client.create_token("gone", &[]).await.unwrap();
    let cert = ClientCert::generate("gone");
    let (status, error, _) = fake
        .control()
        .consume(used.token.expose_secret(), Some(&cert));
    assert_eq!(status, 201, "{error:?}");
    assert!(client.revoke(&revoked.operation_id).await.unwrap());
    let state = fake.control().state();
    let listed: Vec<(&str, &str)> = state["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed.len(),
        3,
        "the finished operations are still listed: {listed:?}"
    );
    let ids: Vec<String> = client
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.operation_id)
        .collect();
    assert_eq!(ids, std::slice::from_ref(&pending.operation_id));
    let other = unix(&fake);
    let named = other.named_now("gone").await.unwrap();
    assert_eq!(
        named.tokens.into_iter().collect::<Vec<_>>(),
        [pending.operation_id]
    );
}

/// The `GET /1.0/operations?recursion=1` listings, which send every operation whole.
fn whole_listings(fake: &FakeLxd) -> usize {
    fake.control()
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.path == "/1.0/operations"
                && r.query
                    .as_deref()
                    .is_some_and(|q| q.contains("recursion=1"))
        })
        .count()
}

/// A listing reads the running operations whole only when one of them is new to the client:
/// with every pending token its own, a look lists them by id alone, so that a thousand pending
/// tokens cost a look little. Another client's token is read whole once, and is a rival from
/// then on until it no longer runs.
#[tokio::test]
async fn listings_read_tokens_whole_only_when_one_is_new_to_the_client() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let ours = client.create_token("same", &[]).await.unwrap();
    for n in 0..5 {
        client.create_token(&format!("t{n}"), &[]).await.unwrap();
    }
    let before = whole_listings(&fake);
    assert!(look(&client, &ours.operation_id).await.rivals.is_empty());
    assert_eq!(
        whole_listings(&fake),
        before,
        "every running token was this client's own"
    );

    let other = unix(&fake);
    let rival = other.create_token("same", &[]).await.unwrap();
    for round in 0..2 {
        assert_eq!(
            look(&client, &ours.operation_id)
                .await
                .rivals
                .into_iter()
                .collect::<Vec<_>>(),
            vec![rival.operation_id.clone()],
            "round {round}"
        );
        assert_eq!(
            whole_listings(&fake),
            before + 1,
            "the other client's token is read whole once"
        );
    }
    assert!(other.revoke(&rival.operation_id).await.unwrap());
    assert!(
        look(&client, &ours.operation_id).await.rivals.is_empty(),
        "a revoked token is no rival"
    );
    let named = client.named_now("t3").await.unwrap();
    assert_eq!(named.tokens.len(), 1, "a known token keeps its name");
    assert_eq!(whole_listings(&fake), before + 1);
}

#[tokio::test]
async fn looks_at_many_tokens_at_once_share_their_listings() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let mut ids = Vec::new();
    for n in 0..20 {
        let name = if n % 2 == 0 { "even" } else { "odd" };
        ids.push((
            client.create_token(name, &[]).await.unwrap().operation_id,
            name,
        ));
    }
    let alone: Vec<_> = {
        let mut looks = Vec::new();
        for (id, name) in &ids {
            looks.push(client.look_at_token(id, name).await.unwrap());
        }
        looks
    };
    let before = operation_listings(&fake);
    let together =
        futures::future::join_all(ids.iter().map(|(id, name)| client.look_at_token(id, name)))
            .await;
    // All twenty ask before the first listing asks for the operations, and share it: it
    // shows each token running after its look began, so it is sound for each.
    let listings = operation_listings(&fake) - before;
    assert_eq!(
        listings, 1,
        "20 looks at once listed the tokens {listings} times"
    );
    for ((look, alone), (id, name)) in together.into_iter().zip(&alone).zip(&ids) {
        let look = look.unwrap();
        assert_eq!(look.operation, alone.operation, "{id}");
        assert_eq!(look.named, alone.named, "{id}");
        assert_eq!(look.rivals, alone.rivals, "{id}");
        assert_eq!(look.rivals.len(), 9, "the other tokens named {name}");
    }
}

#[tokio::test]
async fn a_look_never_uses_a_listing_made_before_it() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let ours = client.create_token("same", &[]).await.unwrap();
    let first = client
        .look_at_token(&ours.operation_id, "same")
        .await
        .unwrap();
    assert!(first.rivals.is_empty());
    let rival = client.create_token("same", &[]).await.unwrap();
    let second = client
        .look_at_token(&ours.operation_id, "same")
        .await
        .unwrap();
    assert_eq!(
        second.rivals.into_iter().collect::<Vec<_>>(),
        vec![rival.operation_id],
        "a token made after the last look is a rival in the next"
    );
}

#[tokio::test]
async fn named_now_sees_the_server_as_it_is_and_shares_listings_with_its_neighbours() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let empty = client.named_now("ci").await.unwrap();
    assert!(empty.identities.is_empty() && empty.tokens.is_empty());
    let token = client.create_token("ci", &[]).await.unwrap();
    client.create_token("other", &[]).await.unwrap();
    // A listing made before the token existed is never used again for a later call.
    let named = client.named_now("ci").await.unwrap();
    assert_eq!(
        named.tokens.iter().collect::<Vec<_>>(),
        [&token.operation_id]
    );
    let cert = ClientCert::generate("ci");
    let (status, error, _) = fake
        .control()
        .consume(token.token.expose_secret(), Some(&cert));
    assert_eq!(status, 201, "{error:?}");
    let named = client.named_now("ci").await.unwrap();
    assert!(named.tokens.is_empty(), "the token was used");
    assert_eq!(named.identities.len(), 1);
    assert_eq!(named.identities[0].name, "ci");

    let before = operation_listings(&fake);
    let names: Vec<String> = (0..20).map(|n| format!("t{n}")).collect();
    let together = futures::future::join_all(names.iter().map(|name| client.named_now(name))).await;
    let listings = operation_listings(&fake) - before;
    assert!(
        listings < names.len() / 2,
        "20 calls at once listed the tokens {listings} times"
    );
    for named in together {
        assert!(named.unwrap().tokens.is_empty());
    }
}

fn deletes(fake: &FakeLxd) -> usize {
    fake.control()
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count()
}

/// A fault on the next `times` revokes (every one for `None`).
fn on_revokes(times: Option<u32>, action: Action) -> Rule {
    Rule {
        method: "DELETE".into(),
        path: "/1.0/operations/*".into(),
        times,
        action,
    }
}

/// The status fault `status`, in LXD's error format.
fn status(status: u16) -> Action {
    Action::Status {
        status,
        body: None,
        headers: None,
    }
}

/// The revoke reaches the server, which cancels the token, and the answer is lost: the
/// revoke is sent again, and its 404 means the first one did it.
#[tokio::test]
async fn a_revoke_whose_answer_is_lost_is_sent_again_and_counts_as_done() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let token = client.create_token("lost-answer", &[]).await.unwrap();
    fake.control().add_fault(on_revokes(
        Some(1),
        Action::Reset {
            reset: ResetWhen::After,
        },
    ));
    assert!(client.revoke(&token.operation_id).await.unwrap());
    assert_eq!(deletes(&fake), 2, "sent again after the lost answer");
    assert!(fake.control().pending_tokens().is_empty());
}

/// A refusal is an answer, not a reason to try again; a server that keeps failing is tried
/// until the deadline and no longer.
#[tokio::test]
async fn a_revoke_stops_at_a_refusal_and_at_the_deadline() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let token = client.create_token("refused", &[]).await.unwrap();
    fake.control().add_fault(on_revokes(Some(1), status(403)));
    let err = client.revoke(&token.operation_id).await.unwrap_err();
    assert!(matches!(err, Error::Api { status: 403, .. }), "{err}");
    assert_eq!(deletes(&fake), 1, "a 403 is not retried");

    fake.control().add_fault(on_revokes(None, status(503)));
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(10), client.revoke(&token.operation_id))
        .await
        .expect("the revoke gave up at its deadline")
        .unwrap_err();
    assert!(matches!(err, Error::Api { status: 503, .. }), "{err}");
    assert!(
        started.elapsed() >= fast().deadline,
        "{:?}",
        started.elapsed()
    );
    assert!(deletes(&fake) > 2, "retried until the deadline");
    assert_eq!(
        fake.control().pending_tokens().len(),
        1,
        "nothing was cancelled"
    );
}

/// A plan or apply of many tokens asks the server's kind once per client: a trusted client's
/// cached `GET /1.0` shows it, on every profile.
#[tokio::test]
async fn the_server_kind_is_read_once_per_client() {
    for (profile, server) in [
        (Profile::V5_0, "lxd"),
        (Profile::V6, "lxd"),
        (Profile::Incus6_0, "incus"),
    ] {
        let fake = fake(profile).await;
        let client = unix(&fake);
        for name in ["a", "b", "c"] {
            assert_eq!(client.server_kind().await.unwrap().server, server);
            client.create_token(name, &[]).await.unwrap();
        }
        assert_eq!(gets(&fake, "/1.0"), 1, "{profile:?}");
    }
}

/// A create beside a listing sends its request and nothing else: the listing's pending tokens
/// of that name are what was there before it.
#[tokio::test]
async fn a_create_beside_a_listing_lists_nothing_itself() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    client.create_token("older", &[]).await.unwrap();
    let named = client.named_now("t").await.unwrap();
    let before = fake.control().requests().len();
    let token = client.create_token_beside("t", &[], &named).await.unwrap();
    let sent: Vec<(String, String)> = fake.control().requests()[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(sent, [("POST".to_owned(), "/1.0/certificates".to_owned())]);
    assert!(
        fake.control()
            .pending_tokens()
            .iter()
            .any(|(id, _)| *id == token.operation_id)
    );
}

/// A create whose answer is lost, beside a listing taken before this client made another token
/// of that name: that token is this client's own, so only the new one is a candidate and it is
/// adopted; a token of that name another client made since the listing would be taken too.
#[tokio::test]
async fn a_lost_answer_beside_an_older_listing_never_adopts_the_clients_own_token() {
    let fake = fake(Profile::V5_0).await;
    let control = fake.control();
    // The lost answers are watched for one request timeout: a short one.
    let client = unix_with(
        &fake,
        RetryPolicy {
            request_timeout: Duration::from_millis(200),
            ..fast()
        },
    );
    let named = client.named_now("t").await.unwrap();
    let own = client.create_token("t", &[]).await.unwrap();
    control.add_fault(Rule {
        method: "POST".into(),
        path: "/1.0/certificates".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let adopted = client.create_token_beside("t", &[], &named).await.unwrap();
    assert_ne!(adopted.operation_id, own.operation_id);
    let mut pending: Vec<String> = control.pending_tokens().into_iter().map(|t| t.0).collect();
    let mut expected = vec![own.operation_id.clone(), adopted.operation_id.clone()];
    pending.sort();
    expected.sort();
    assert_eq!(pending, expected, "one new token, adopted");
    // Another client's token of that name made after the listing is not told apart.
    let other = unix(&fake);
    let theirs = other.create_token("t", &[]).await.unwrap();
    control.add_fault(Rule {
        method: "POST".into(),
        path: "/1.0/certificates".into(),
        times: Some(1),
        action: Action::Reset {
            reset: ResetWhen::After,
        },
    });
    let err = client
        .create_token_beside("t", &[], &named)
        .await
        .unwrap_err();
    match &err {
        Error::AmbiguousCreate { candidates, .. } => {
            assert!(candidates.contains(&theirs.operation_id), "{err}");
            assert_eq!(candidates.len(), 2, "{err}");
        }
        other => panic!("{other}"),
    }
}

/// A look learns the server's clock from an answer it gets anyway: the operations listing's
/// for a token still running, the operation's for one that is not; no `GET /1.0` but for a
/// token that is gone (a 404 brings no clock through).
#[tokio::test]
async fn a_look_takes_the_servers_clock_from_the_operations_answer() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let token = client.create_token("t", &[]).await.unwrap();
    let clock_reads = || gets(&fake, "/1.0");
    let before = clock_reads();
    let running = client
        .look_at_token(&token.operation_id, "t")
        .await
        .unwrap();
    assert!(matches!(
        running.operation,
        lxd_client::client::TokenOperation::Running(_)
    ));
    assert_eq!(clock_reads(), before, "the listing's Date was enough");
    fake.control().restart();
    let look = client
        .look_at_token(&token.operation_id, "t")
        .await
        .unwrap();
    assert_eq!(look.operation, lxd_client::client::TokenOperation::Gone);
    assert_eq!(clock_reads(), before + 1);
    // The fake's clock stands still and is far from this machine's: both looks read it.
    assert_eq!(look.server_time, running.server_time);
    assert!((running.server_time - time::OffsetDateTime::now_utc()).abs() > time::Duration::DAY);
}

/// A look lists the trust store, then the running operations: a token still running then is
/// shown as it was made, with no read of its own; a token no longer running has its operation
/// read, and is shown with a listing made after that read, which holds the identity its use
/// made.
#[tokio::test]
async fn a_look_lists_before_a_running_token_and_after_a_used_one() {
    let fake = fake(Profile::V5_0).await;
    let client = unix(&fake);
    let token = client.create_token("t", &[]).await.unwrap();
    let op = format!("/1.0/operations/{}", token.operation_id);
    let reads = || -> Vec<String> {
        fake.control()
            .requests()
            .iter()
            .filter(|r| {
                r.method == "GET"
                    && (r.path == op
                        || r.path == "/1.0/certificates"
                        || r.path == "/1.0/operations")
            })
            .map(|r| r.path.clone())
            .collect()
    };
    let before = reads().len();
    let running = client
        .look_at_token(&token.operation_id, "t")
        .await
        .unwrap();
    assert_eq!(
        running.operation,
        lxd_client::client::TokenOperation::Running(token.clone())
    );
    assert!(running.named.is_empty());
    assert_eq!(reads()[before..], ["/1.0/certificates", "/1.0/operations"]);
    let cert = ClientCert::generate("t");
    let (status, error, _) = fake
        .control()
        .consume(token.token.expose_secret(), Some(&cert));
    assert_eq!(status, 201, "{error:?}");
    let before = reads().len();
    let used = client
        .look_at_token(&token.operation_id, "t")
        .await
        .unwrap();
    assert_eq!(used.operation, lxd_client::client::TokenOperation::Finished);
    assert_eq!(
        reads()[before..],
        [
            "/1.0/certificates",
            "/1.0/operations",
            op.as_str(),
            "/1.0/certificates",
            "/1.0/operations"
        ]
    );
    assert_eq!(used.named.len(), 1, "the identity the token made");
}

/// A client that did not make a token learns it whole from its first listing, on each server
/// generation, and a look at it then reads no operation: the token it shows is the one that
/// was made, token string and expiry included.
#[tokio::test]
async fn a_look_from_another_client_shows_the_token_as_made() {
    for profile in [Profile::V5_0, Profile::V6, Profile::Incus6_0] {
        let fake = fake(profile).await;
        let maker = unix(&fake);
        let token = maker.create_token("t", &[]).await.unwrap();
        let looker = unix(&fake);
        let op = format!("/1.0/operations/{}", token.operation_id);
        let look = looker
            .look_at_token(&token.operation_id, "t")
            .await
            .unwrap();
        assert_eq!(
            look.operation,
            lxd_client::client::TokenOperation::Running(token.clone()),
            "{profile:?}"
        );
        assert_eq!(gets(&fake, &op), 0, "{profile:?}: no read of the operation");
        // Once used, the next look reads the operation and finds it finished.
        let (status, error, _) = fake.control().consume(token.token.expose_secret(), None);
        assert_eq!(status, 201, "{profile:?}: {error:?}");
        let used = looker
            .look_at_token(&token.operation_id, "t")
            .await
            .unwrap();
        assert_eq!(
            used.operation,
            lxd_client::client::TokenOperation::Finished,
            "{profile:?}"
        );
        assert_eq!(gets(&fake, &op), 1, "{profile:?}");
        assert_eq!(
            used.named.len(),
            1,
            "{profile:?}: the identity the token made"
        );
    }
}
