//! The fake OCI Identity service under 100 concurrent clients: requests per second, with every
//! request correctly signed and no error, and afterwards the fake holding exactly the tokens
//! the clients hold (none lost, none extra).
//!
//! Each client is its own `oci_client::Client` (its own connection pool and signer) for its own
//! user, all signing with the fake's test key. One cycle of a client is create, list, get (a
//! list: the API has no GetAuthToken) and delete of the token it held before, so a user holds
//! one token between cycles and two for a moment, the service's limit.
//!
//! The bench lives in `oci-client` because the fakes never depend on a client: this crate
//! already has `fake-oci` as a dev-dependency.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use fake_oci::{Config, FakeOci, TEST_EPOCH, TEST_PUBLIC_KEY, TEST_TENANCY};
use oci_client::signer::Signer;
use oci_client::{Client, FixedClock, RetryPolicy, SecretString};

const CLIENTS: usize = 100;
/// HTTP requests in one cycle of one client.
const REQUESTS_PER_CYCLE: u64 = 4;

/// Every request's failure counts: no retry may hide one.
fn no_retries() -> RetryPolicy {
    RetryPolicy {
        request_timeout: Duration::from_secs(30),
        disabled: true,
        ..RetryPolicy::default()
    }
}

fn user(i: usize) -> String {
    format!("ocid1.user.oc1..aaaaaaaabenchuser{i:040}")
}

/// One client and the token its user holds between cycles.
struct Worker {
    client: Client,
    user: String,
    held: Option<String>,
}

impl Worker {
    /// One cycle; returns the first error, if any, as text.
    async fn cycle(&mut self, n: u64) -> Result<(), String> {
        let created = self
            .client
            .create_auth_token(&self.user, &format!("bench {n}"))
            .await
            .map_err(|e| format!("create: {e}"))?;
        let listed = self
            .client
            .list_auth_tokens(&self.user)
            .await
            .map_err(|e| format!("list: {e}"))?;
        let mut expected: BTreeSet<&str> = self.held.iter().map(String::as_str).collect();
        expected.insert(&created.id);
        let ids: BTreeSet<&str> = listed.iter().map(|t| t.id.as_str()).collect();
        if ids != expected {
            return Err(format!("list shows {ids:?}, the client holds {expected:?}"));
        }
        let got = self
            .client
            .get_auth_token(&self.user, &created.id)
            .await
            .map_err(|e| format!("get: {e}"))?;
        if got.is_none_or(|t| t.lifecycle_state != "ACTIVE") {
            return Err("get: the new token is not there, or not ACTIVE".into());
        }
        if let Some(old) = self.held.take() {
            self.client
                .delete_auth_token(&self.user, &old, None)
                .await
                .map_err(|e| format!("delete: {e}"))?;
        }
        self.held = Some(created.id);
        Ok(())
    }
}

struct Bench {
    _fake: FakeOci,
    control: fake_oci::Control,
    workers: Vec<Worker>,
    cycles: u64,
    errors: Arc<AtomicU64>,
}

impl Bench {
    async fn start() -> Bench {
        let fake = FakeOci::start(Config::for_testing())
            .await
            .expect("start the fake");
        let control = fake.control();
        let workers = (0..CLIENTS)
            .map(|i| {
                let user = user(i);
                control
                    .add_user(TEST_TENANCY, &user, TEST_PUBLIC_KEY)
                    .expect("add a user");
                let client = Client::new(
                    &common::credentials(&fake, &user),
                    no_retries(),
                    Arc::new(FixedClock(TEST_EPOCH)),
                )
                .expect("client");
                Worker {
                    client,
                    user,
                    held: None,
                }
            })
            .collect();
        Bench {
            _fake: fake,
            control,
            workers,
            cycles: 0,
            errors: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Every client runs `iters` cycles at once; returns the wall time.
    async fn run(&mut self, iters: u64) -> Duration {
        let workers = std::mem::take(&mut self.workers);
        let started = Instant::now();
        let tasks: Vec<_> = workers
            .into_iter()
            .map(|mut worker| {
                let errors = self.errors.clone();
                let base = self.cycles;
                tokio::spawn(async move {
                    for n in base..base + iters {
                        if let Err(error) = worker.cycle(n).await {
                            errors.fetch_add(1, Ordering::Relaxed);
                            eprintln!("{}: {error}", worker.user);
                        }
                    }
                    worker
                })
            })
            .collect();
        for task in tasks {
            self.workers.push(task.await.expect("a client task"));
        }
        let elapsed = started.elapsed();
        self.cycles += iters;
        elapsed
    }

    /// The fake's tokens against the clients' (user, token) pairs: (lost, extra).
    fn compare(&self) -> (usize, usize) {
        let state = self.control.state();
        let fake: BTreeSet<(String, String)> = state["tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["state"] == "ACTIVE")
            .map(|t| {
                (
                    t["user_id"].as_str().unwrap_or_default().to_owned(),
                    t["id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let held: BTreeSet<(String, String)> = self
            .workers
            .iter()
            .filter_map(|w| Some((w.user.clone(), w.held.clone()?)))
            .collect();
        (
            held.difference(&fake).count(),
            fake.difference(&held).count(),
        )
    }
}

/// Writes what criterion does not record beside its estimates, for `cargo xtask bench`.
fn write_check(requests: u64, errors: u64, lost: usize, extra: usize) {
    let Some(home) = std::env::var_os("CRITERION_HOME") else {
        return;
    };
    let dir = std::path::Path::new(&home).join("oci_100_clients");
    let check = serde_json::json!({
        "clients": CLIENTS,
        "requests_per_iteration": CLIENTS as u64 * REQUESTS_PER_CYCLE,
        "requests": requests,
        "errors": errors,
        "lost_tokens": lost,
        "extra_tokens": extra,
    });
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(dir.join("check.json"), check.to_string());
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut bench: Option<Bench> = None;
    let mut group = c.benchmark_group("oci_100_clients");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(CLIENTS as u64 * REQUESTS_PER_CYCLE));
    group.bench_function("fake", |b| {
        let bench = bench.get_or_insert_with(|| rt.block_on(Bench::start()));
        b.iter_custom(|iters| rt.block_on(bench.run(iters)));
    });
    group.finish();
    // What one request costs the client alone: an RSA-2048 signature (the fake only verifies).
    let mut group = c.benchmark_group("oci_client_signing");
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_request", |b| {
        let key = SecretString::from(fake_oci::TEST_PRIVATE_KEY);
        let key = oci_client::signer::parse_private_key(&key, None).expect("the test key");
        let fingerprint = oci_client::signer::fingerprint(&key);
        let signer = Signer::new(TEST_TENANCY, &user(0), &fingerprint, key);
        b.iter(|| {
            signer.sign(
                "POST",
                "127.0.0.1:1",
                "/20160918/users/u/authTokens",
                Some(b"{\"description\":\"bench\"}"),
                TEST_EPOCH,
            )
        });
    });
    group.finish();
    if let Some(bench) = bench {
        let (lost, extra) = bench.compare();
        let errors = bench.errors.load(Ordering::Relaxed);
        let requests = bench.cycles * CLIENTS as u64 * REQUESTS_PER_CYCLE;
        println!(
            "oci_100_clients: {requests} requests, {errors} errors, {lost} lost tokens, {extra} extra tokens"
        );
        write_check(requests, errors, lost, extra);
        assert_eq!(
            (errors, lost, extra),
            (0, 0, 0),
            "every request must succeed and the fake must hold exactly the clients' tokens"
        );
    }
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
}

criterion_group! {
    name = group;
    config = config();
    targets = benches
}
criterion_main!(group);
