//! The official OCI Python SDK and `oci-cli` are real clients of the fake.
//!
//! `cargo xtask test` installs them (PyPI `oci-cli`, which brings `oci`) and sets `XTASK_OCI_VENV`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use fake_oci::{ClockMode, Config, FakeOci};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/oci")
}

/// A running fake on the wall clock (the SDK signs with the real date), and the test user's
/// key in a private temp dir.
async fn setup() -> (FakeOci, tempfile::TempDir, PathBuf, PathBuf) {
    let fake = FakeOci::start(Config {
        clock: ClockMode::System,
        ..Config::for_testing()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, fake.test_identity().private_key_pem).unwrap();
    let other = dir.path().join("other.pem");
    // Another key: the published 1024-bit test key, which the user does not have.
    std::fs::copy(
        fixtures().join("signing-vectors/test_key_private_pkcs1.pem"),
        &other,
    )
    .unwrap();
    for f in [&key, &other] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    (fake, dir, key, other)
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_runs_the_whole_lifecycle() {
    let Some(venv) = common::tool("XTASK_OCI_VENV") else {
        return;
    };
    let (fake, _dir, key, other) = setup().await;
    let id = fake.test_identity();
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(fixtures().join("sdk/lifecycle.py"))
        .args([&fake.endpoint(), &id.tenancy, &id.user, &id.fingerprint])
        .arg(&key)
        .arg(&other)
        .env("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["limit"], "LimitExceeded");
    assert_eq!(seen["wrong_key"], "NotAuthenticated");
    assert_eq!(seen["secret_length"], 20);
    assert_eq!(fake.control().state()["tokens"], serde_json::json!([]));
}

fn cli(
    venv: &Path,
    config: &Path,
    endpoint: &str,
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    let out = Command::new(venv.join("bin/oci"))
        .args(args)
        .arg("--config-file")
        .arg(config)
        .args(["--endpoint", endpoint])
        .env("SUPPRESS_LABEL_WARNING", "True")
        .env("OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING", "True")
        .env_remove("OCI_CLI_PROFILE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = if stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap()
    };
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_cli_runs_the_whole_lifecycle() {
    let Some(venv) = common::tool("XTASK_OCI_VENV") else {
        return;
    };
    let (fake, dir, key, _other) = setup().await;
    let id = fake.test_identity();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[DEFAULT]\nuser={}\nfingerprint={}\nkey_file={}\ntenancy={}\nregion=us-ashburn-1\n",
            id.user,
            id.fingerprint,
            key.display(),
            id.tenancy
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let endpoint = fake.endpoint();
    let run = |args: &[&str]| {
        let venv = venv.clone();
        let config = config.clone();
        let endpoint = endpoint.clone();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&venv, &config, &endpoint, &args)
        })
    };

    let (rc, created, err) = run(&[
        "iam",
        "auth-token",
        "create",
        "--user-id",
        &id.user,
        "--description",
        "cli one",
    ])
    .await
    .unwrap();
    assert_eq!(rc, 0, "{err}");
    assert_eq!(created["data"]["lifecycle-state"], "ACTIVE");
    assert_eq!(created["data"]["description"], "cli one");
    assert!(
        created["data"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(created["etag"].is_string());
    let token_id = created["data"]["id"].as_str().unwrap().to_owned();

    let (rc, listed, err) = run(&["iam", "auth-token", "list", "--user-id", &id.user, "--all"])
        .await
        .unwrap();
    assert_eq!(rc, 0, "{err}");
    let items = listed["data"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0]["token"].is_null());

    let (rc, updated, err) = run(&[
        "iam",
        "auth-token",
        "update",
        "--user-id",
        &id.user,
        "--auth-token-id",
        &token_id,
        "--description",
        "cli renamed",
    ])
    .await
    .unwrap();
    assert_eq!(rc, 0, "{err}");
    assert_eq!(updated["data"]["description"], "cli renamed");

    let (rc, _, err) = run(&[
        "iam",
        "auth-token",
        "delete",
        "--user-id",
        &id.user,
        "--auth-token-id",
        &token_id,
        "--force",
    ])
    .await
    .unwrap();
    assert_eq!(rc, 0, "{err}");
    let (rc, listed, err) = run(&["iam", "auth-token", "list", "--user-id", &id.user])
        .await
        .unwrap();
    assert_eq!(rc, 0, "{err}");
    assert!(
        listed.is_null() || listed["data"] == serde_json::json!([]),
        "{listed}"
    );

    let (rc, _, err) = run(&[
        "iam",
        "auth-token",
        "delete",
        "--user-id",
        &id.user,
        "--auth-token-id",
        &token_id,
        "--force",
        "--no-retry",
    ])
    .await
    .unwrap();
    assert_eq!(rc, 1);
    assert!(err.contains("NotAuthorizedOrNotFound"), "{err}");
}

/// Runs `oci` with the test user's config file against the fake, off the async runtime.
async fn run_cli(
    venv: &Path,
    config: &Path,
    endpoint: &str,
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    let (venv, config, endpoint) = (venv.to_owned(), config.to_owned(), endpoint.to_owned());
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&venv, &config, &endpoint, &args)
    })
    .await
    .unwrap()
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let config = dir.join("config");
    std::fs::write(&config, body).unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_cli_manages_users() {
    let Some(venv) = common::tool("XTASK_OCI_VENV") else {
        return;
    };
    let (fake, dir, key, _other) = setup().await;
    let id = fake.test_identity();
    let config = write_config(
        dir.path(),
        &format!(
            "[DEFAULT]\nuser={}\nfingerprint={}\nkey_file={}\ntenancy={}\nregion=us-ashburn-1\n",
            id.user,
            id.fingerprint,
            key.display(),
            id.tenancy
        ),
    );
    let endpoint = fake.endpoint();
    let (rc, created, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "user",
            "create",
            "--compartment-id",
            &id.tenancy,
            "--name",
            "cli-user",
            "--description",
            "made by oci-cli",
            "--email",
            "cli@example.com",
        ],
    )
    .await;
    assert_eq!(rc, 0, "{err}");
    assert_eq!(created["data"]["name"], "cli-user");
    assert_eq!(created["data"]["email"], "cli@example.com");
    assert_eq!(created["data"]["lifecycle-state"], "ACTIVE");
    assert_eq!(created["data"]["compartment-id"], id.tenancy.as_str());
    let user = created["data"]["id"].as_str().unwrap().to_owned();
    assert!(user.starts_with("ocid1.user.oc1.."), "{user}");

    // The name is taken now.
    let (rc, _, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "user",
            "create",
            "--compartment-id",
            &id.tenancy,
            "--name",
            "cli-user",
            "--description",
            "again",
            "--no-retry",
        ],
    )
    .await;
    assert_eq!(rc, 1);
    assert!(err.contains("409"), "{err}");

    // Listed with every page, the page size being 1: the test user and the new one.
    fake.control().set_page_size(Some(1));
    let (rc, listed, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "user",
            "list",
            "--compartment-id",
            &id.tenancy,
            "--all",
        ],
    )
    .await;
    assert_eq!(rc, 0, "{err}");
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert!(names.contains(&"cli-user"), "{names:?}");
    let pages = fake
        .control()
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/20160918/users")
        .count();
    assert_eq!(pages, 2, "one request per page");
    fake.control().set_page_size(None);

    // A user holding an auth token cannot be deleted until the token is gone.
    let (rc, token, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "auth-token",
            "create",
            "--user-id",
            &user,
            "--description",
            "t",
        ],
    )
    .await;
    assert_eq!(rc, 0, "{err}");
    let token_id = token["data"]["id"].as_str().unwrap().to_owned();
    let delete_user = [
        "iam",
        "user",
        "delete",
        "--user-id",
        user.as_str(),
        "--force",
        "--no-retry",
    ];
    let (rc, _, err) = run_cli(&venv, &config, &endpoint, &delete_user).await;
    assert_eq!(rc, 1);
    assert!(
        err.contains("Conflict") && err.contains("auth token"),
        "{err}"
    );
    let (rc, _, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "auth-token",
            "delete",
            "--user-id",
            &user,
            "--auth-token-id",
            &token_id,
            "--force",
        ],
    )
    .await;
    assert_eq!(rc, 0, "{err}");
    let (rc, _, err) = run_cli(&venv, &config, &endpoint, &delete_user).await;
    assert_eq!(rc, 0, "{err}");
    let (rc, _, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &["iam", "user", "get", "--user-id", &user, "--no-retry"],
    )
    .await;
    assert_eq!(rc, 1);
    assert!(err.contains("NotAuthorizedOrNotFound"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_cli_signs_with_a_session_token() {
    let Some(venv) = common::tool("XTASK_OCI_VENV") else {
        return;
    };
    let (fake, dir, _key, session_key) = setup().await;
    let id = fake.test_identity();
    // The session key is the published 1024-bit test key; the fake learns its public half
    // when it issues the token, as the real service does in `oci session authenticate`.
    let public =
        std::fs::read_to_string(fixtures().join("signing-vectors/test_key_public_spki.pem"))
            .unwrap();
    let token = fake
        .control()
        .issue_session(&id.user, &public, std::time::Duration::from_secs(3600))
        .unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).unwrap();
    std::fs::set_permissions(
        &token_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // What `oci session authenticate` writes: no user or fingerprint, a session key and token.
    let config = write_config(
        dir.path(),
        &format!(
            "[DEFAULT]\nfingerprint=00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\nkey_file={}\ntenancy={}\nregion=us-ashburn-1\nsecurity_token_file={}\n",
            session_key.display(),
            id.tenancy,
            token_file.display()
        ),
    );
    let endpoint = fake.endpoint();
    let (rc, created, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "auth-token",
            "create",
            "--user-id",
            &id.user,
            "--description",
            "by session",
            "--auth",
            "security_token",
        ],
    )
    .await;
    assert_eq!(rc, 0, "{err}");
    assert_eq!(created["data"]["description"], "by session");

    // An expired session is refused: oci-cli reads the token's expiry itself and says so
    // before sending anything, unless it reads it within the second the token expires (its
    // check is to the second), when the fake refuses it with the same word.
    let expired = fake
        .control()
        .issue_session(&id.user, &public, std::time::Duration::ZERO)
        .unwrap();
    std::fs::write(&token_file, &expired).unwrap();
    let before = fake.control().requests().len();
    let out = tokio::process::Command::new(venv.join("bin/oci"))
        .args(["iam", "auth-token", "list", "--user-id", &id.user])
        .args(["--auth", "security_token", "--no-retry", "--config-file"])
        .arg(&config)
        .args(["--endpoint", &endpoint])
        .env("SUPPRESS_LABEL_WARNING", "True")
        .env("OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING", "True")
        .env_remove("OCI_CLI_PROFILE")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.to_lowercase().contains("expired"), "{text}");
    let sent = fake.control().requests().len() - before;
    assert!(
        sent == 0 || text.contains("NotAuthenticated"),
        "{sent} requests: {text}"
    );
    std::fs::write(&token_file, &token).unwrap();

    // A session the fake no longer knows (a reset forgets sessions) is refused.
    fake.control().reset();
    let (rc, _, err) = run_cli(
        &venv,
        &config,
        &endpoint,
        &[
            "iam",
            "auth-token",
            "list",
            "--user-id",
            &id.user,
            "--auth",
            "security_token",
            "--no-retry",
        ],
    )
    .await;
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("NotAuthenticated"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_signs_with_a_session_token() {
    let Some(venv) = common::tool("XTASK_OCI_VENV") else {
        return;
    };
    let (fake, dir, _key, session_key) = setup().await;
    let id = fake.test_identity();
    let public =
        std::fs::read_to_string(fixtures().join("signing-vectors/test_key_public_spki.pem"))
            .unwrap();
    let issue = |lifetime| {
        fake.control()
            .issue_session(&id.user, &public, std::time::Duration::from_secs(lifetime))
            .unwrap()
    };
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, issue(3600)).unwrap();
    let expired_file = dir.path().join("expired");
    std::fs::write(&expired_file, issue(0)).unwrap();
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(fixtures().join("sdk/session.py"))
        .args([&fake.endpoint(), &id.tenancy, &id.user])
        .args([&token_file, &session_key, &expired_file])
        .env("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["expired_status"], 401);
    assert_eq!(seen["expired_code"], "NotAuthenticated");
    assert!(
        seen["expired_message"]
            .as_str()
            .is_some_and(|m| m.contains("oci session refresh")),
        "{seen}"
    );
    assert_eq!(fake.control().state()["tokens"], serde_json::json!([]));
}
