//! Terraform runs of our providers beside the Go `hashicorp/null` provider, and at scale.
//!
//! - `apply/{lxd_trust_token,null_resource,oci_identity_auth_token}/N`: `terraform apply` of N
//!   resources into a fresh state (the state file is removed and the fake reset first, outside
//!   the measurement), with Terraform's default parallelism (10).
//! - `plan_refresh/{lxd_trust_token,null_resource,oci_identity_auth_token}/N`: `terraform plan
//!   -refresh-only` of a state that holds N resources (applied once before the measurement).
//! - `plan_refresh/oci_identity_auth_tokens/N`: the same of N `oci_identity_auth_tokens` data
//!   sources, one per user, each user holding one token.
//! - `{apply,plan_refresh}/null_resource_sized/N`: `null_resource` whose triggers pad each
//!   instance's state to the size of an `lxd_trust_token`'s, measured by applying one of each
//!   first: Terraform's own cost per resource grows with the size of the state it holds (at
//!   1000 an apply of padded ones takes about twice as long as of plain ones), so the
//!   `lxd_trust_token` scale is compared with these as well.
//! - `{apply,plan_refresh}/terraform_data_sized/N` (N = 1 and 100): Terraform's built-in
//!   `terraform_data`, its input padded so that its state is as large as a token's: Terraform's
//!   own work on such a state with no plugin at all, the floor under any provider's figure.
//! - `first_token/{unix,https}`: `terraform apply` of one `lxd_trust_token` over the unix socket
//!   and over HTTPS with a client certificate: the provider's start, its first connection, and
//!   the first token created, on a fake that holds no other token. Both name their remote in
//!   a `provider "lxd"` block.
//!
//! N is 1, 10, 100 and 1000 for every type (the scale rows of `cargo xtask bench`, where
//! `null_resource` shows how Terraform's own cost per resource grows with the count); in test
//! mode (without `--bench`) N is 1 and 2, so that a test run stays cheap.
//! The OCI runs go to fake-oci, which allows a user two auth tokens as OCI does: the N
//! `oci_identity_auth_token` belong to N/2 users (rounded up), registered through the fake's
//! control with the test user's key; the test user signs every request.
//! The providers are found through `dev_overrides`, so none pays `terraform init` or the lock
//! file's checksum: ours are this build's binaries (release under `cargo bench`), the null
//! provider the Go binary `cargo xtask tools` installs (`XTASK_NULL_PROVIDER_DIR`).
//! Before the measurement each configuration runs once with `TF_LOG=trace`, and the gRPC calls
//! Terraform made (its `GRPCProvider` trace lines) are counted by method into `rpcs.json` in
//! the criterion directory, so that the per-resource time can be explained.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use fake_lxd::{ClockMode, Config, FakeLxd};
use fake_oci::FakeOci;

fn provider_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"))
}

/// `cargo bench` passes `--bench`; without it criterion runs each benchmark once as a test.
fn test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test")
}

/// The resource counts measured for each provider.
fn counts(kind: Kind) -> Vec<usize> {
    match (test_mode(), kind) {
        (true, _) => vec![1, 2],
        (false, Kind::BuiltinSized) => vec![1, 100],
        (false, _) => vec![1, 10, 100, 1000],
    }
}

/// How many characters `Kind::NullSized` pads its triggers with and `Kind::BuiltinSized` its
/// input: set once by [`state_pad`] (both 0 until then).
static PADS: std::sync::OnceLock<(usize, usize)> = std::sync::OnceLock::new();

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lxd,
    Null,
    /// `null_resource` whose triggers make each instance's state as large as an
    /// `lxd_trust_token`'s (its token, fingerprint, ids and private record): Terraform's own
    /// cost per resource grows with the size of the state, whichever provider wrote it.
    NullSized,
    /// Terraform's built-in `terraform_data`, padded likewise: Terraform's own work on N
    /// resources with a token's state, without any plugin (the floor no provider goes below).
    BuiltinSized,
    /// `oci_identity_auth_token`, two to a user.
    Oci,
    /// The `oci_identity_auth_tokens` data source, one to a user.
    OciData,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Lxd => "lxd_trust_token",
            Kind::Null => "null_resource",
            Kind::NullSized => "null_resource_sized",
            Kind::BuiltinSized => "terraform_data_sized",
            Kind::Oci => "oci_identity_auth_token",
            Kind::OciData => "oci_identity_auth_tokens",
        }
    }

    fn is_oci(self) -> bool {
        matches!(self, Kind::Oci | Kind::OciData)
    }

    /// The users the N OCI resources or data sources belong to, distinct for each kind and N
    /// so that the workspaces of one fake never share a user.
    fn oci_users(self, count: usize) -> Vec<String> {
        let (tag, users) = match self {
            Kind::Oci => ("r", count.div_ceil(fake_oci::state::TOKENS_PER_USER)),
            Kind::OciData => ("d", count),
            Kind::Lxd | Kind::Null | Kind::NullSized | Kind::BuiltinSized => return Vec::new(),
        };
        (0..users)
            .map(|i| format!("ocid1.user.oc1..aaaabench{tag}{count}x{i}"))
            .collect()
    }

    fn main_tf(self, count: usize) -> String {
        let users = || {
            let list: Vec<String> = self
                .oci_users(count)
                .iter()
                .map(|u| format!("    \"{u}\",\n"))
                .collect();
            format!("locals {{\n  users = [\n{}  ]\n}}\n\n", list.concat())
        };
        match self {
            Kind::Lxd => format!(
                "resource \"lxd_trust_token\" \"t\" {{\n  count = {count}\n  name  = \"bench-${{count.index}}\"\n}}\n"
            ),
            Kind::Null => format!(
                "resource \"null_resource\" \"t\" {{\n  count    = {count}\n  triggers = {{ name = \"bench-${{count.index}}\" }}\n}}\n"
            ),
            Kind::NullSized => format!(
                "resource \"null_resource\" \"t\" {{\n  count    = {count}\n  triggers = {{ name = \"bench-${{count.index}}\", pad = \"{}\" }}\n}}\n",
                "x".repeat(PADS.get().map_or(0, |p| p.0))
            ),
            // The input is stored twice (as `input` and `output`).
            Kind::BuiltinSized => format!(
                "resource \"terraform_data\" \"t\" {{\n  count = {count}\n  input = \"bench-${{count.index}}{}\"\n}}\n",
                "x".repeat(PADS.get().map_or(0, |p| p.1))
            ),
            Kind::Oci => format!(
                "{}resource \"oci_identity_auth_token\" \"t\" {{\n  count       = {count}\n  user_id     = local.users[floor(count.index / {})]\n  description = \"bench-${{count.index}}\"\n}}\n",
                users(),
                fake_oci::state::TOKENS_PER_USER
            ),
            Kind::OciData => format!(
                "{}data \"oci_identity_auth_tokens\" \"t\" {{\n  count   = {count}\n  user_id = local.users[count.index]\n}}\n",
                users()
            ),
        }
    }
}

/// A Terraform working directory with one configuration and the environment to run it.
struct Workspace {
    dir: tempfile::TempDir,
    terraform: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Workspace {
    fn new(terraform: &Path, main_tf: &str, null_dir: &Path, lxd_dir: &Path) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("main.tf"), main_tf).expect("main.tf");
        let rc = dir.path().join("bench.tfrc");
        let bin_dir = provider_binary().parent().expect("the binary's directory");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"hashicorp/lxd\"  = \"{0}\"\n    \"hashicorp/oci\"  = \"{0}\"\n    \"hashicorp/null\" = \"{1}\"\n  }}\n  direct {{}}\n}}\n",
                bin_dir.display(),
                null_dir.display()
            ),
        )
        .expect("CLI config");
        // Both sides get the same environment, though only our provider reads the LXD part.
        let env = vec![
            ("TF_CLI_CONFIG_FILE", rc.display().to_string()),
            ("CHECKPOINT_DISABLE", "1".to_owned()),
            ("TF_IN_AUTOMATION", "1".to_owned()),
            ("LXD_DIR", lxd_dir.display().to_string()),
            (
                "LXD_CONF",
                dir.path().join("lxc-config").display().to_string(),
            ),
        ];
        Workspace {
            dir,
            terraform: terraform.to_owned(),
            env,
        }
    }

    /// Points our OCI provider at `fake`, signing as its test user (an OCI configuration file
    /// in this directory).
    fn use_oci(&mut self, fake: &FakeOci) {
        let config = support::write_oci_config(fake, self.dir.path());
        self.env
            .push(("OCI_CONFIG_FILE", config.display().to_string()));
        self.env.push((
            "CLIENT_HOST_OVERRIDES",
            format!("oci_identity.IdentityClient={}", fake.endpoint()),
        ));
    }

    /// Forgets the previous apply: the next one starts from an empty state.
    fn fresh_state(&self) {
        for name in ["terraform.tfstate", "terraform.tfstate.backup"] {
            let _ = std::fs::remove_file(self.dir.path().join(name));
        }
    }

    fn terraform(&self, args: &[&str], trace: Option<&Path>) {
        let mut cmd = Command::new(&self.terraform);
        cmd.arg(format!("-chdir={}", self.dir.path().display()))
            .args(args)
            .args(["-input=false", "-no-color"])
            .env_remove("TF_LOG")
            .env_remove("TF_LOG_PATH");
        if let Some(log) = trace {
            cmd.env("TF_LOG", "trace").env("TF_LOG_PATH", log);
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("run terraform");
        assert!(
            out.status.success(),
            "terraform {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn apply(&self) {
        self.terraform(&["apply", "-auto-approve"], None);
    }

    fn plan_refresh(&self) {
        self.terraform(&["plan", "-refresh-only"], None);
    }

    /// The gRPC calls Terraform made to the provider in one run of `args`, by method.
    fn count_rpcs(&self, args: &[&str]) -> BTreeMap<String, u64> {
        let log = self.dir.path().join("trace.log");
        let _ = std::fs::remove_file(&log);
        self.terraform(args, Some(&log));
        let text = std::fs::read_to_string(&log).expect("the trace log");
        let _ = std::fs::remove_file(&log);
        let line = regex::Regex::new(r"\] GRPCProvider(?:\.v6)?: (\w+)$").expect("regex");
        let mut calls = BTreeMap::new();
        for method in text
            .lines()
            .filter_map(|l| line.captures(l.trim_end()))
            .map(|c| c[1].to_owned())
        {
            *calls.entry(method).or_insert(0) += 1;
        }
        calls
    }

    /// The state file Terraform wrote.
    fn state(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.path().join("terraform.tfstate"))
            .expect("a state file after apply");
        serde_json::from_str(&text).expect("state JSON")
    }

    /// How many resource instances the state holds.
    fn instances(&self) -> usize {
        self.state()["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["instances"].as_array())
            .map(Vec::len)
            .sum()
    }

    /// How many tokens the `oci_identity_auth_tokens` data sources in the state list.
    fn listed_tokens(&self) -> usize {
        self.state()["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["type"] == "oci_identity_auth_tokens")
            .filter_map(|r| r["instances"].as_array())
            .flatten()
            .filter_map(|i| i["attributes"]["tokens"].as_array())
            .map(Vec::len)
            .sum()
    }
}

/// A fake-oci on the wall clock (the provider signs with it).
fn start_oci(rt: &tokio::runtime::Runtime) -> FakeOci {
    rt.block_on(FakeOci::start(fake_oci::Config {
        clock: fake_oci::ClockMode::System,
        ..fake_oci::Config::for_testing()
    }))
    .expect("start fake-oci")
}

/// How many auth tokens `fake` holds.
fn oci_tokens(fake: &FakeOci) -> usize {
    fake.control().state()["tokens"]
        .as_array()
        .map_or(0, Vec::len)
}

/// The workspace of N resources (or data sources) of `kind`. For the OCI kinds their users are
/// registered with `oci` first and the provider pointed at it; each user of the data sources
/// gets one token, made by a client, so that each data source has one to list.
fn workspace(
    terraform: &Path,
    null_dir: &Path,
    lxd_dir: &Path,
    oci: &FakeOci,
    rt: &tokio::runtime::Runtime,
    kind: Kind,
    count: usize,
) -> Workspace {
    let mut ws = Workspace::new(terraform, &kind.main_tf(count), null_dir, lxd_dir);
    if !kind.is_oci() {
        return ws;
    }
    let tenancy = oci.test_identity().tenancy;
    let users = kind.oci_users(count);
    for user in &users {
        oci.control()
            .add_user(&tenancy, user, fake_oci::TEST_PUBLIC_KEY)
            .expect("register a user");
    }
    if kind == Kind::OciData {
        let client = support::fakes::oci_test_client(oci);
        for user in &users {
            rt.block_on(client.create_auth_token(user, "bench"))
                .expect("a token for the data source to list");
        }
    }
    ws.use_oci(oci);
    ws
}

/// The paddings that make a `null_resource` instance's state and a `terraform_data`'s (compact
/// JSON, private state included) as large as an `lxd_trust_token`'s: one of each is applied
/// and their state compared.
fn state_pad(terraform: &Path, null_dir: &Path, rt: &tokio::runtime::Runtime) -> (usize, usize) {
    let fake = Fake::start(rt);
    let size = |kind: Kind| {
        let ws = Workspace::new(terraform, &kind.main_tf(1), null_dir, fake.dir.path());
        ws.apply();
        let instance = ws.state()["resources"][0]["instances"][0].clone();
        serde_json::to_string(&instance).expect("JSON").len()
    };
    let (lxd, null, builtin) = (
        size(Kind::Lxd),
        size(Kind::NullSized),
        size(Kind::BuiltinSized),
    );
    let pad = lxd.saturating_sub(null);
    assert!(
        pad > 0,
        "a token's state ({lxd} bytes) is larger than null_resource's ({null})"
    );
    assert!(
        lxd > builtin,
        "a token's state ({lxd} bytes) is larger than terraform_data's ({builtin})"
    );
    (pad, (lxd - builtin) / 2)
}

/// A fake-lxd on its unix socket, in the directory `LXD_DIR` names.
struct Fake {
    fake: FakeLxd,
    dir: tempfile::TempDir,
}

impl Fake {
    fn start(rt: &tokio::runtime::Runtime) -> Fake {
        let dir = tempfile::tempdir().expect("temp dir");
        let fake = rt
            .block_on(FakeLxd::start(Config {
                clock: ClockMode::System,
                unix_socket: Some(dir.path().join("unix.socket")),
                ..Config::for_testing()
            }))
            .expect("start the fake");
        Fake { fake, dir }
    }
}

/// The gRPC calls counted per configuration: `{"apply": {"lxd_trust_token": {"100": {...}}}}`.
#[derive(Default)]
struct RpcCounts(
    BTreeMap<&'static str, BTreeMap<&'static str, BTreeMap<String, serde_json::Value>>>,
);

impl RpcCounts {
    fn record(
        &mut self,
        run: &'static str,
        kind: Kind,
        count: usize,
        calls: BTreeMap<String, u64>,
    ) {
        self.0
            .entry(run)
            .or_default()
            .entry(kind.resource())
            .or_default()
            .insert(count.to_string(), serde_json::json!(calls));
    }

    /// Writes the counts beside criterion's results when `cargo xtask bench` names the
    /// directory (`CRITERION_HOME`); a test run keeps them to itself.
    fn write(&self) {
        let Some(home) = std::env::var_os("CRITERION_HOME").map(PathBuf::from) else {
            return;
        };
        let _ = std::fs::create_dir_all(&home);
        let text = serde_json::to_string_pretty(&serde_json::json!(self.0)).expect("JSON");
        std::fs::write(home.join("rpcs.json"), text).expect("write rpcs.json");
    }
}

fn benches(c: &mut Criterion) {
    let Some(terraform) = support::tool("XTASK_TERRAFORM") else {
        return;
    };
    let Some(null_dir) = support::tool("XTASK_NULL_PROVIDER_DIR") else {
        return;
    };
    // The fakes serve from the runtime's threads while Terraform runs as a child process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let rpcs = std::cell::RefCell::new(RpcCounts::default());

    // Refresh-only plans first, each of a state applied once; these fakes keep their tokens.
    // Each workspace is made when its benchmark runs, not when a filter leaves it out.
    let plans = Fake::start(&rt);
    let plans_oci = start_oci(&rt);
    let mut group = c.benchmark_group("plan_refresh");
    group.sampling_mode(SamplingMode::Flat);
    PADS.get_or_init(|| state_pad(&terraform, &null_dir, &rt));
    for kind in [
        Kind::Lxd,
        Kind::Null,
        Kind::NullSized,
        Kind::BuiltinSized,
        Kind::Oci,
        Kind::OciData,
    ] {
        for count in counts(kind) {
            let mut ws: Option<Workspace> = None;
            group.bench_function(BenchmarkId::new(kind.resource(), count), |b| {
                let ws = ws.get_or_insert_with(|| {
                    let ws = workspace(
                        &terraform,
                        &null_dir,
                        plans.dir.path(),
                        &plans_oci,
                        &rt,
                        kind,
                        count,
                    );
                    ws.apply();
                    assert_eq!(ws.instances(), count);
                    if kind == Kind::OciData {
                        assert_eq!(
                            ws.listed_tokens(),
                            count,
                            "each data source lists its token"
                        );
                    }
                    let calls = ws.count_rpcs(&["plan", "-refresh-only"]);
                    rpcs.borrow_mut().record("plan_refresh", kind, count, calls);
                    ws
                });
                b.iter(|| ws.plan_refresh());
            });
        }
    }
    group.finish();

    // Applies into a fresh state; these fakes are reset before each (fake-oci keeps the users
    // its control registered).
    let applies = Fake::start(&rt);
    let applies_oci = start_oci(&rt);
    let fresh = |ws: &Workspace| {
        ws.fresh_state();
        applies.fake.control().reset();
        applies_oci.control().reset();
    };
    let mut group = c.benchmark_group("apply");
    group.sampling_mode(SamplingMode::Flat);
    for kind in [
        Kind::Lxd,
        Kind::Null,
        Kind::NullSized,
        Kind::BuiltinSized,
        Kind::Oci,
    ] {
        for count in counts(kind) {
            let mut ws: Option<Workspace> = None;
            group.bench_function(BenchmarkId::new(kind.resource(), count), |b| {
                let ws = ws.get_or_insert_with(|| {
                    let ws = workspace(
                        &terraform,
                        &null_dir,
                        applies.dir.path(),
                        &applies_oci,
                        &rt,
                        kind,
                        count,
                    );
                    fresh(&ws);
                    let calls = ws.count_rpcs(&["apply", "-auto-approve"]);
                    rpcs.borrow_mut().record("apply", kind, count, calls);
                    ws
                });
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        fresh(ws);
                        let started = Instant::now();
                        ws.apply();
                        total += started.elapsed();
                        assert_eq!(ws.instances(), count);
                        match kind {
                            Kind::Lxd => {
                                assert_eq!(applies.fake.control().pending_tokens().len(), count);
                            }
                            Kind::Oci => assert_eq!(oci_tokens(&applies_oci), count),
                            Kind::Null | Kind::NullSized | Kind::BuiltinSized | Kind::OciData => {}
                        }
                    }
                    total
                });
            });
        }
    }
    group.finish();
    rpcs.borrow().write();

    // The first connection: one token over the unix socket, and one over HTTPS with a client
    // certificate the fake trusts. Each apply finds the fake with no token: it restarts after
    // each (not timed), which loses the pending tokens and keeps the trust store. Left to
    // accumulate, the tokens of every earlier sample made each apply read a longer listing,
    // and HTTPS, measured second, read the longer ones.
    let first = Fake::start(&rt);
    let mut group = c.benchmark_group("first_token");
    group.sampling_mode(SamplingMode::Flat);
    // The difference of two medians of about 100 ms is the figure: more samples than the
    // default ten steady it (each sample is one apply).
    group.sample_size(40);
    for transport in ["unix", "https"] {
        let mut ws: Option<Workspace> = None;
        group.bench_function(transport, |b| {
            let ws = ws.get_or_insert_with(|| {
                first_token_workspace(&terraform, &null_dir, &first, transport)
            });
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    ws.fresh_state();
                    let started = Instant::now();
                    ws.apply();
                    total += started.elapsed();
                    assert_eq!(ws.instances(), 1);
                    first.fake.control().restart();
                    assert!(first.fake.control().pending_tokens().is_empty());
                }
                total
            });
        });
    }
    group.finish();
}

/// One `lxd_trust_token` over `transport`. For HTTPS the lxc configuration directory holds a
/// client certificate the fake trusts (through a token made over the socket) and the fake's
/// certificate under `servercerts/`, as `lxc remote add` leaves them.
fn first_token_workspace(
    terraform: &Path,
    null_dir: &Path,
    fake: &Fake,
    transport: &str,
) -> Workspace {
    let ws = Workspace::new(terraform, &Kind::Lxd.main_tf(1), null_dir, fake.dir.path());
    if transport == "unix" {
        // A provider block on both sides, so that both pay Terraform's provider-configuration
        // round trip and the difference is the transport alone.
        let main_tf = format!(
            "provider \"lxd\" {{\n  remote {{\n    name    = \"local\"\n    address = \"unix://{}\"\n    default = true\n  }}\n}}\n\n{}",
            fake.dir.path().join("unix.socket").display(),
            Kind::Lxd.main_tf(1)
        );
        std::fs::write(ws.dir.path().join("main.tf"), main_tf).expect("main.tf");
        return ws;
    }
    ws.apply();
    let (_, token) = fake
        .fake
        .control()
        .pending_tokens()
        .pop()
        .expect("a pending token");
    let cert = fake_lxd::ClientCert::generate("bench");
    let (status, error, _) = fake.fake.control().consume(&token, Some(&cert));
    assert_eq!(
        status, 201,
        "the fake refused the bench's certificate: {error:?}"
    );
    let conf = ws.dir.path().join("lxc-config");
    std::fs::create_dir_all(conf.join("servercerts")).expect("servercerts");
    std::fs::write(conf.join("client.crt"), &cert.cert_pem).expect("client.crt");
    std::fs::write(conf.join("client.key"), &cert.key_pem).expect("client.key");
    std::fs::write(
        conf.join("servercerts/fake.crt"),
        fake.fake.server_cert_pem(),
    )
    .expect("server cert");
    let main_tf = format!(
        "provider \"lxd\" {{\n  remote {{\n    name    = \"fake\"\n    address = \"https://{}\"\n    default = true\n  }}\n}}\n\n{}",
        fake.fake.https_addr(),
        Kind::Lxd.main_tf(1)
    );
    std::fs::write(ws.dir.path().join("main.tf"), main_tf).expect("main.tf");
    ws.fresh_state();
    ws
}

fn config() -> Criterion {
    Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
}

criterion_group! {
    name = group;
    config = config();
    targets = benches
}
criterion_main!(group);
