//! The real `incus` client drives the fake's `incus-6.0` profile and a real Incus 6.0 daemon;
//! outputs compared (normalised). Tokens minted by one server and presented to the other fail
//! cleanly, in time.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RealDaemon, normalise, tool, unix_request};
use fake_lxd::{Config, FakeLxd, Profile};

/// What one command gave: exit code, normalised stdout and stderr.
type Outcome = (i32, String, String);

/// How long one `incus` command may take before it counts as a hang.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// Runs `incus` with `INCUS_DIR=dir` (its `local:` remote) and a private `INCUS_CONF`; killed
/// and reported when it outlives [`COMMAND_DEADLINE`].
fn incus_raw(incus: &Path, dir: &Path, conf: &Path, args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(incus)
        .args(args)
        .env("INCUS_DIR", dir)
        .env("INCUS_CONF", conf)
        .env("HOME", conf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run incus");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("incus status").is_some() {
            break;
        }
        if start.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            panic!("incus {args:?} hung for more than {COMMAND_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("incus output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// [`incus_raw`], normalised: the first-run banner goes, and what differs between servers by
/// nature (tokens, fingerprints, dates, addresses) becomes placeholders.
fn incus(incus: &Path, dir: &Path, conf: &Path, args: &[&str]) -> Outcome {
    let (code, stdout, stderr) = incus_raw(incus, dir, conf, args);
    let stderr = stderr
        .lines()
        .filter(|l| {
            !l.contains("first time running Incus")
                && !l.contains("To start your first")
                && !l.contains("incus launch")
                && !l.contains("virtual machine")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let short_fingerprint = regex::Regex::new(r"\b[0-9a-f]{12}\b").expect("pattern");
    let stdout = normalise(&stdout);
    let stdout = short_fingerprint
        .replace_all(&stdout, "<FP12>")
        .into_owned();
    (code, common::unordered(args, stdout), normalise(&stderr))
}

/// The token of the pending token `name`, from the raw csv of `list-tokens`.
fn token_of(incus_bin: &Path, dir: &Path, conf: &Path, name: &str) -> String {
    let (_, csv, _) = incus_raw(
        incus_bin,
        dir,
        conf,
        &["config", "trust", "list-tokens", "--format", "csv"],
    );
    csv.lines()
        .find(|l| l.starts_with(&format!("{name},")))
        .and_then(|l| l.split(',').nth(1))
        .unwrap_or_else(|| panic!("no pending token {name} in {csv:?}"))
        .to_owned()
}

fn session(incus_bin: &Path, dir: &Path) -> Vec<(&'static str, Outcome)> {
    let conf = tempfile::tempdir().expect("conf dir");
    let other = tempfile::tempdir().expect("second conf dir");
    let run = |args: &[&str]| incus(incus_bin, dir, conf.path(), args);
    let mut log = vec![
        ("trust add", run(&["config", "trust", "add", "cli-tok"])),
        (
            "trust add restricted",
            run(&[
                "config",
                "trust",
                "add",
                "cli-restr",
                "--restricted",
                "--projects",
                "default",
            ]),
        ),
        ("trust add empty name", run(&["config", "trust", "add", ""])),
    ];
    for (label, format) in [
        ("list-tokens table", "table"),
        ("list-tokens csv", "csv"),
        ("list-tokens json", "json"),
        ("list-tokens yaml", "yaml"),
        ("list-tokens compact", "compact"),
    ] {
        log.push((
            label,
            run(&["config", "trust", "list-tokens", "--format", format]),
        ));
    }
    log.push((
        "revoke-token",
        run(&["config", "trust", "revoke-token", "cli-restr"]),
    ));
    log.push((
        "revoke-token again",
        run(&["config", "trust", "revoke-token", "cli-restr"]),
    ));
    log.push((
        "list-tokens after revoke",
        run(&["config", "trust", "list-tokens", "--format", "csv"]),
    ));
    let token = token_of(incus_bin, dir, conf.path(), "cli-tok");
    log.push(("remote add", run(&["remote", "add", "r1", &token])));
    log.push((
        "remote add again, same cert",
        run(&["remote", "add", "r2", &token]),
    ));
    log.push((
        "remote add again, other cert",
        incus(
            incus_bin,
            dir,
            other.path(),
            &["remote", "add", "r3", &token],
        ),
    ));
    log.push((
        "trust list",
        run(&["config", "trust", "list", "--format", "csv"]),
    ));
    log.push(("remote list", run(&["remote", "list", "--format", "csv"])));
    log.push((
        "trusted client lists the tokens",
        run(&["config", "trust", "list-tokens", "r1:", "--format", "csv"]),
    ));
    // An already-expired token ("0M") is refused at redemption.
    log.push((
        "set expiry 0M",
        run(&["config", "set", "core.remote_token_expiry=0M"]),
    ));
    log.push((
        "trust add expiring",
        run(&["config", "trust", "add", "t-exp"]),
    ));
    let expired = token_of(incus_bin, dir, conf.path(), "t-exp");
    log.push((
        "remote add with an expired token",
        incus(
            incus_bin,
            dir,
            other.path(),
            &["remote", "add", "r4", &expired],
        ),
    ));
    log.push((
        "unset expiry",
        run(&["config", "unset", "core.remote_token_expiry"]),
    ));
    log
}

/// Presents a token of one server to another over HTTPS with a fresh client configuration.
fn cross(incus_bin: &Path, dir: &Path, https: &str, token: &str) -> Outcome {
    let conf = tempfile::tempdir().expect("conf dir");
    let url = format!("https://{https}");
    incus(
        incus_bin,
        dir,
        conf.path(),
        &[
            "remote",
            "add",
            "cross",
            &url,
            "--token",
            token,
            "--accept-certificate",
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incus_sees_the_fake_as_it_sees_the_real_daemon() {
    let Some(incusd) = tool("XTASK_INCUSD") else {
        return;
    };
    let Some(incus_bin) = tool("XTASK_INCUS") else {
        return;
    };
    let real = tokio::task::spawn_blocking(move || RealDaemon::start_incus(&incusd))
        .await
        .expect("incusd starts");
    let body = format!(r#"{{"config":{{"core.https_address":"{}"}}}}"#, real.https);
    assert_eq!(
        unix_request(&real.socket(), "PATCH", "/1.0", Some(&body))
            .await
            .status,
        200
    );
    let fake_dir = tempfile::tempdir().expect("fake dir");
    let fake = FakeLxd::start(Config {
        profile: Profile::Incus6_0,
        unix_socket: Some(fake_dir.path().join("unix.socket")),
        clock: fake_lxd::ClockMode::System,
        ..Config::for_testing()
    })
    .await
    .expect("fake starts");

    let real_dir = real.dir.path().to_owned();
    let bin = incus_bin.clone();
    let expected = tokio::task::spawn_blocking(move || session(&bin, &real_dir))
        .await
        .expect("real session");
    let fake_path = fake_dir.path().to_owned();
    let bin = incus_bin.clone();
    let actual = tokio::task::spawn_blocking(move || session(&bin, &fake_path))
        .await
        .expect("fake session");
    for (label, (code, _, stderr)) in &expected {
        eprintln!("{label}: {code} {stderr}");
    }
    common::assert_same_steps(&expected, &actual, &fake);
    // The consumed token left one trusted certificate in the fake, named after the token.
    let names: Vec<String> = fake
        .control()
        .certificates()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(names, ["cli-tok"]);

    // Each server's token presented to the other: refused at once, and the token stays
    // pending where it was made.
    let real_dir = real.dir.path().to_owned();
    let fake_path = fake_dir.path().to_owned();
    let (real_https, fake_https) = (real.https.clone(), fake.https_addr().to_string());
    let bin = incus_bin.clone();
    let (fake_token_on_real, real_token_on_fake) = tokio::task::spawn_blocking(move || {
        let admin = tempfile::tempdir().expect("conf dir");
        let mint = |dir: &Path| {
            incus_raw(
                &bin,
                dir,
                admin.path(),
                &["config", "trust", "add", "cross"],
            );
            token_of(&bin, dir, admin.path(), "cross")
        };
        let fake_token = mint(&fake_path);
        let real_token = mint(&real_dir);
        let outcomes = (
            cross(&bin, &real_dir, &real_https, &fake_token),
            cross(&bin, &fake_path, &fake_https, &real_token),
        );
        // The token stays pending where it was made (`token_of` fails otherwise).
        for dir in [&real_dir, &fake_path] {
            token_of(&bin, dir, admin.path(), "cross");
        }
        outcomes
    })
    .await
    .expect("cross sessions");
    let refused = (
        1,
        String::new(),
        "Generating a client certificate. This may take a minute...\nError: No matching certificate add operation found"
            .to_owned(),
    );
    assert_eq!(fake_token_on_real, refused);
    assert_eq!(real_token_on_fake, refused);
}
