//! The publishing path as Terraform sees it, with real Terraform (1.11 and 1.0.3).
//!
//! `cargo xtask release --gpg-key` writes the registry files, signed with a throwaway GnuPG key.
//! A provider registry on 127.0.0.1 over HTTPS (service discovery, versions, download with
//! `shasums_url`, `shasums_signature_url` and the signing key) serves them, and Terraform trusts
//! the test CA through `SSL_CERT_FILE`. The registry's hostname is `127.0.0.1:PORT`: Terraform
//! takes any hostname in a source address (also `localhost`, with no dot) and a port.
//! `terraform init` verifies checksums and signature and the example applies against the
//! in-process fakes; a tampered zip and a wrong signature make `init` fail.
//!
//! `cargo xtask install --dir` fills a plugin directory; `terraform providers lock` against it
//! gives hashes that `terraform init` accepts offline, and the binary installed there is the
//! one released (their `h1:` hashes agree).
//!
//! The release build is cargo's: done once in the target directory, rebuilt only when stale.
//! This test keeps its own small helpers instead of `common/`, whose `dev_overrides` it must
//! not use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fake_lxd::FakeLxd;
use fake_oci::FakeOci;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const PLATFORM: &str = "linux_amd64";
const OVERRIDE_WARNING: &str = "Provider development overrides are in effect";

/// An external tool from `cargo xtask test`, or `None` (with a note) when run another way.
fn tool(var: &str) -> Option<PathBuf> {
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

fn terraforms() -> Vec<PathBuf> {
    ["XTASK_TERRAFORM", "XTASK_TERRAFORM_1_0"]
        .iter()
        .filter_map(|v| tool(v))
        .collect()
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `cargo xtask ARGS` from the workspace root, asserting success.
fn xtask(args: &[&str], env: &[(&str, &Path)]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.arg("xtask").args(args).current_dir(workspace_root());
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "cargo xtask {args:?}\n{}", text(&out));
}

/// A throwaway GnuPG home with one signing key; its agent stops when dropped.
struct Gpg {
    gpg: PathBuf,
    home: tempfile::TempDir,
    fingerprint: String,
}

impl Gpg {
    fn new(gpg: &Path, name: &str) -> Gpg {
        // The agent's socket lives in the home, and socket paths are short: use the system's
        // temporary directory.
        let home = tempfile::Builder::new().prefix("gpg").tempdir().unwrap();
        let mut gpg = Gpg {
            gpg: gpg.to_owned(),
            home,
            fingerprint: String::new(),
        };
        gpg.ok(&[
            "--passphrase",
            "",
            "--quick-generate-key",
            name,
            "rsa2048",
            "sign",
            "never",
        ]);
        let listing = gpg.ok(&["--with-colons", "--list-secret-keys"]);
        gpg.fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|l| l.trim_matches(':').to_owned())
            .expect("a fingerprint");
        gpg
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.gpg);
        cmd.env("GNUPGHOME", self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback"]);
        cmd
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command().args(args).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}\n{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The key ID Terraform prints: the last 16 hex digits of the fingerprint.
    fn key_id(&self) -> &str {
        &self.fingerprint[self.fingerprint.len() - 16..]
    }

    fn public_key(&self) -> String {
        self.ok(&["--armor", "--export", &self.fingerprint])
    }

    fn detached_signature(&self, file: &Path) -> Vec<u8> {
        let out = self
            .command()
            .args([
                "--local-user",
                &self.fingerprint,
                "--detach-sign",
                "--output",
                "-",
            ])
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        out.stdout
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let gpgconf = self.gpg.with_file_name("gpgconf");
        let _ = Command::new(gpgconf)
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

/// What the registry serves, changed by tests to tamper with it.
struct Served {
    files: BTreeMap<String, Vec<u8>>,
    key_id: String,
    public_key: String,
    requests: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    base: String,
    served: Arc<Mutex<Served>>,
}

/// A provider registry (Terraform's provider registry protocol) for the files of one release.
struct Registry {
    host: String,
    ca_file: PathBuf,
    served: Arc<Mutex<Served>>,
    _dir: tempfile::TempDir,
}

impl Registry {
    async fn start(release: &Path, gpg: &Gpg) -> Registry {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(release).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
        let served = Arc::new(Mutex::new(Served {
            files,
            key_id: gpg.key_id().to_owned(),
            public_key: gpg.public_key(),
            requests: Vec::new(),
        }));

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "registry test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let shared = Shared {
            base: format!("https://{host}"),
            served: served.clone(),
        };
        let router = axum::Router::new()
            .route("/.well-known/terraform.json", get(discovery))
            .route("/v1/providers/{namespace}/{name}/versions", get(versions))
            .route(
                "/v1/providers/{namespace}/{name}/{version}/download/{os}/{arch}",
                get(download),
            )
            .route("/files/{file}", get(file))
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Registry {
            host,
            ca_file,
            served,
            _dir: dir,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.served.lock().unwrap().requests.clone()
    }

    fn replace(&self, file: &str, bytes: Vec<u8>) {
        let mut served = self.served.lock().unwrap();
        assert!(served.files.contains_key(file), "{file} is not served");
        served.files.insert(file.to_owned(), bytes);
    }
}

async fn record(
    State(shared): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path().to_owned();
    shared.served.lock().unwrap().requests.push(path);
    next.run(request).await
}

async fn discovery() -> Response {
    axum::Json(serde_json::json!({"providers.v1": "/v1/providers/"})).into_response()
}

/// The release's zips of provider `name`, as (version, os, arch, file name).
fn packages(served: &Served, name: &str) -> Vec<(String, String, String, String)> {
    let prefix = format!("terraform-provider-{name}_");
    served
        .files
        .keys()
        .filter_map(|file| {
            let rest = file.strip_prefix(&prefix)?.strip_suffix(".zip")?;
            let mut parts = rest.splitn(3, '_');
            let (version, os, arch) = (parts.next()?, parts.next()?, parts.next()?);
            Some((version.into(), os.into(), arch.into(), file.clone()))
        })
        .collect()
}

/// The protocol versions the release's manifest declares.
fn protocols(served: &Served, name: &str, version: &str) -> serde_json::Value {
    let manifest = &served.files[&format!("terraform-provider-{name}_{version}_manifest.json")];
    let manifest: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    manifest["metadata"]["protocol_versions"].clone()
}

async fn versions(
    State(shared): State<Shared>,
    UrlPath((_namespace, name)): UrlPath<(String, String)>,
) -> Response {
    let served = shared.served.lock().unwrap();
    let packages = packages(&served, &name);
    if packages.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut by_version: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (version, os, arch, _) in packages {
        by_version
            .entry(version)
            .or_default()
            .push(serde_json::json!({"os": os, "arch": arch}));
    }
    let versions: Vec<_> = by_version
        .into_iter()
        .map(|(version, platforms)| {
            serde_json::json!({
                "version": version,
                "protocols": protocols(&served, &name, &version),
                "platforms": platforms,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "versions": versions })).into_response()
}

async fn download(
    State(shared): State<Shared>,
    UrlPath((_namespace, name, version, os, arch)): UrlPath<(
        String,
        String,
        String,
        String,
        String,
    )>,
) -> Response {
    let served = shared.served.lock().unwrap();
    let Some((_, _, _, zip)) = packages(&served, &name)
        .into_iter()
        .find(|(v, o, a, _)| (v, o, a) == (&version, &os, &arch))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sums_name = format!("terraform-provider-{name}_{version}_SHA256SUMS");
    // The shasum a registry took from the sums file when the release was published.
    let sums = String::from_utf8(served.files[&sums_name].clone()).unwrap();
    let shasum = sums
        .lines()
        .find_map(|l| l.strip_suffix(&format!("  {zip}")))
        .unwrap()
        .to_owned();
    let files = format!("{}/files", shared.base);
    axum::Json(serde_json::json!({
        "protocols": protocols(&served, &name, &version),
        "os": os,
        "arch": arch,
        "filename": zip,
        "download_url": format!("{files}/{zip}"),
        "shasums_url": format!("{files}/{sums_name}"),
        "shasums_signature_url": format!("{files}/{sums_name}.sig"),
        "shasum": shasum,
        "signing_keys": {
            "gpg_public_keys": [{
                "key_id": served.key_id,
                "ascii_armor": served.public_key,
                "trust_signature": "",
                "source": "",
                "source_url": null,
            }],
        },
    }))
    .into_response()
}

async fn file(State(shared): State<Shared>, UrlPath(file): UrlPath<String>) -> Response {
    match shared.served.lock().unwrap().files.get(&file) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Both fakes, and the environment that points our providers at them.
struct Fakes {
    lxd: FakeLxd,
    oci: FakeOci,
    env: Vec<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Fakes {
    async fn start() -> Fakes {
        let dir = tempfile::tempdir().unwrap();
        let lxd = FakeLxd::start(fake_lxd::Config {
            clock: fake_lxd::ClockMode::System,
            unix_socket: Some(dir.path().join("unix.socket")),
            ..fake_lxd::Config::for_testing()
        })
        .await
        .unwrap();
        // Terraform signs with the wall clock, so the fake follows it.
        let oci = FakeOci::start(fake_oci::Config {
            clock: fake_oci::ClockMode::System,
            ..fake_oci::Config::for_testing()
        })
        .await
        .unwrap();
        let id = oci.test_identity();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, &id.private_key_pem).unwrap();
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
        let path = |p: PathBuf| p.display().to_string();
        let env = vec![
            ("LXD_DIR".to_owned(), path(dir.path().to_owned())),
            ("LXD_CONF".to_owned(), path(dir.path().join("lxc-config"))),
            ("OCI_CONFIG_FILE".to_owned(), path(config)),
            (
                "CLIENT_HOST_OVERRIDES".to_owned(),
                format!("oci_identity.IdentityClient={}", oci.endpoint()),
            ),
            ("TF_VAR_user_ocid".to_owned(), id.user),
        ];
        Fakes {
            lxd,
            oci,
            env,
            _dir: dir,
        }
    }

    fn oci_tokens(&self) -> usize {
        self.oci.control().state()["tokens"]
            .as_array()
            .unwrap()
            .len()
    }
}

/// A root module with both seed resources; `lxd_source` and `oci_source` are `required_providers`
/// entries (`None`: the provider is left out, so Terraform assumes `hashicorp/NAME`).
fn root_module(lxd_source: Option<&str>, oci_source: Option<&str>) -> String {
    let mut required = String::new();
    for (name, source) in [("lxd", lxd_source), ("oci", oci_source)] {
        if let Some(source) = source {
            required.push_str(&format!(
                "    {name} = {{\n      source  = \"{source}\"\n      version = \"~> {VERSION}\"\n    }}\n"
            ));
        }
    }
    format!(
        r#"terraform {{
  required_providers {{
{required}  }}
}}

variable "user_ocid" {{}}

resource "lxd_trust_token" "token1" {{
  name = "mytoken"
}}

resource "oci_identity_auth_token" "test_auth_token" {{
  description = "released"
  user_id     = var.user_ocid
}}

output "lxd_token" {{
  value = lxd_trust_token.token1.token
}}

output "oci_token" {{
  value = oci_identity_auth_token.test_auth_token.token
}}
"#
    )
}

/// A Terraform working directory with its own CLI configuration and environment.
struct Work {
    terraform: PathBuf,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Work {
    fn new(terraform: &Path, main_tf: &str, cli_config: Option<&str>) -> Work {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), main_tf).unwrap();
        let mut env = vec![
            ("CHECKPOINT_DISABLE".to_owned(), "1".to_owned()),
            ("TF_IN_AUTOMATION".to_owned(), "1".to_owned()),
            // The user's home is the working directory: no plugin directory or CLI
            // configuration of this machine takes part.
            ("HOME".to_owned(), dir.path().display().to_string()),
        ];
        if let Some(config) = cli_config {
            let rc = dir.path().join("test.tfrc");
            std::fs::write(&rc, config).unwrap();
            env.push(("TF_CLI_CONFIG_FILE".to_owned(), rc.display().to_string()));
        }
        Work {
            terraform: terraform.to_owned(),
            dir,
            env,
        }
    }

    fn set(&mut self, key: &str, value: impl Into<String>) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.into()));
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.terraform);
        cmd.arg(format!("-chdir={}", self.dir.path().display()))
            .args(args)
            .arg("-no-color")
            .env_remove("TF_LOG")
            .env_remove("TF_CLI_CONFIG_FILE")
            .env_remove("TF_PLUGIN_CACHE_DIR");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// Runs and asserts success; returns stdout and stderr.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let all = text(&out);
        assert!(
            out.status.success(),
            "terraform {args:?} failed ({})\n{all}",
            self.terraform.display()
        );
        assert!(!all.contains(OVERRIDE_WARNING), "{all}");
        all
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "terraform {args:?} succeeded ({})\n{}",
            self.terraform.display(),
            text(&out)
        );
        text(&out)
    }

    fn lock_file(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(".terraform.lock.hcl")).unwrap()
    }

    fn output(&self, name: &str) -> String {
        let out = self.run(&["output", "-raw", name]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The `h1:` and `zh:` hashes a lock file records for the provider at `address`.
fn lock_hashes(lock: &str, address: &str) -> Vec<String> {
    let start = lock
        .find(&format!("provider \"{address}\""))
        .unwrap_or_else(|| panic!("no {address} in the lock file:\n{lock}"));
    let block = &lock[start..];
    let block = &block[..block.find("\n}").unwrap()];
    let hashes = regex::Regex::new(r#""((h1|zh):[^"]+)""#).unwrap();
    hashes
        .captures_iter(block)
        .map(|c| c[1].to_owned())
        .collect()
}

fn sha256_line(sums: &str, file: &str) -> String {
    sums.lines()
        .find_map(|l| l.strip_suffix(&format!("  {file}")))
        .unwrap_or_else(|| panic!("no {file} in\n{sums}"))
        .to_owned()
}

/// Applies the root module in `work` against the fakes and checks both tokens are theirs.
fn apply(work: &mut Work, fakes: &Fakes) {
    for (key, value) in &fakes.env {
        work.set(key, value.clone());
    }
    let lxd_before = fakes.lxd.control().pending_tokens().len();
    let oci_before = fakes.oci_tokens();
    work.ok(&["apply", "-auto-approve", "-input=false"]);
    let pending = fakes.lxd.control().pending_tokens();
    assert_eq!(pending.len(), lxd_before + 1);
    let token = work.output("lxd_token");
    assert!(pending.iter().any(|(_, t)| *t == token));
    assert_eq!(fakes.oci_tokens(), oci_before + 1);
    assert!(!work.output("oci_token").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_install_is_verified_and_applies_with_every_terraform() {
    let terraforms = terraforms();
    let Some(gpg) = tool("XTASK_GPG") else {
        return;
    };
    if terraforms.is_empty() {
        return;
    }
    let signer = Gpg::new(&gpg, "Release Test Signer");
    let release = tempfile::tempdir().unwrap();
    xtask(
        &[
            "release",
            "--dir",
            &release.path().display().to_string(),
            "--gpg-key",
            &signer.fingerprint,
        ],
        &[("GNUPGHOME", signer.home.path())],
    );
    let mut names: Vec<String> = std::fs::read_dir(release.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = Vec::new();
    for name in ["lxd", "oci"] {
        let prefix = format!("terraform-provider-{name}_{VERSION}");
        expected.extend([
            format!("{prefix}_SHA256SUMS"),
            format!("{prefix}_SHA256SUMS.sig"),
            format!("{prefix}_{PLATFORM}.zip"),
            format!("{prefix}_manifest.json"),
        ]);
    }
    assert_eq!(names, expected);

    let registry = Registry::start(release.path(), &signer).await;
    let fakes = Fakes::start().await;
    let host = registry.host.clone();
    let lxd_source = format!("{host}/terraform-lxd/lxd");
    let oci_source = format!("{host}/oracle/oci");
    let main_tf = root_module(Some(&lxd_source), Some(&oci_source));
    let cli_config = "provider_installation {\n  direct {}\n}\n";
    let sums = std::fs::read_to_string(
        release
            .path()
            .join(format!("terraform-provider-lxd_{VERSION}_SHA256SUMS")),
    )
    .unwrap();
    let lxd_zip = format!("terraform-provider-lxd_{VERSION}_{PLATFORM}.zip");
    let lxd_zip_sha = sha256_line(&sums, &lxd_zip);

    let new_work = |terraform: &Path| {
        let mut work = Work::new(terraform, &main_tf, Some(cli_config));
        work.set("SSL_CERT_FILE", registry.ca_file.display().to_string());
        work
    };
    let fakes = Arc::new(fakes);
    for terraform in &terraforms {
        // Init verifies the checksum and the signature, and records both kinds of hash.
        let mut work = new_work(terraform);
        let registry_requests = registry.requests().len();
        let init = tokio::task::block_in_place(|| work.ok(&["init", "-input=false"]));
        assert!(
            init.contains(&format!("key ID {}", signer.key_id())),
            "init names the signing key:\n{init}"
        );
        let fetched = registry.requests()[registry_requests..].to_vec();
        for name in ["lxd", "oci"] {
            let sums = format!("/files/terraform-provider-{name}_{VERSION}_SHA256SUMS");
            assert!(fetched.contains(&sums), "{fetched:?}");
            assert!(fetched.contains(&format!("{sums}.sig")), "{fetched:?}");
        }
        let lock = work.lock_file();
        let hashes = lock_hashes(&lock, &lxd_source);
        assert!(
            hashes.contains(&format!("zh:{lxd_zip_sha}")),
            "the lock file records the published sum:\n{lock}"
        );
        assert!(hashes.iter().any(|h| h.starts_with("h1:")), "{lock}");
        tokio::task::block_in_place(|| apply(&mut work, &fakes));

        // A tampered zip: the published sum no longer matches.
        let original = registry.served.lock().unwrap().files[&lxd_zip].clone();
        let mut tampered = original.clone();
        let middle = tampered.len() / 2;
        tampered[middle] ^= 0x55;
        registry.replace(&lxd_zip, tampered);
        let work = new_work(terraform);
        let error = work.fails(&["init", "-input=false"]);
        assert!(
            error.contains("checksum") || error.contains("does not match"),
            "{error}"
        );
        registry.replace(&lxd_zip, original);

        // A signature by another key than the registry names.
        let sums_name = format!("terraform-provider-lxd_{VERSION}_SHA256SUMS");
        let sig_name = format!("{sums_name}.sig");
        let original = registry.served.lock().unwrap().files[&sig_name].clone();
        let other = Gpg::new(&gpg, "Someone Else");
        registry.replace(
            &sig_name,
            other.detached_signature(&release.path().join(&sums_name)),
        );
        let work = new_work(terraform);
        let error = work.fails(&["init", "-input=false"]);
        assert!(error.contains("signature"), "{error}");
        registry.replace(&sig_name, original);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn install_gives_an_offline_mirror_whose_lock_hashes_init_accepts() {
    let terraforms = terraforms();
    if terraforms.is_empty() {
        return;
    }
    // The plugin directory of a user whose home is `home`; the release beside it, unsigned.
    let home = tempfile::tempdir().unwrap();
    let plugins = home.path().join(".terraform.d").join("plugins");
    xtask(&["install", "--dir", &plugins.display().to_string()], &[]);
    let release = tempfile::tempdir().unwrap();
    xtask(
        &["release", "--dir", &release.path().display().to_string()],
        &[],
    );
    let hosts: Vec<_> = std::fs::read_dir(&plugins)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    let host = &hosts[0];
    let binary = plugins.join(format!(
        "{host}/terraform-lxd/lxd/{VERSION}/{PLATFORM}/terraform-provider-lxd_v{VERSION}"
    ));
    assert!(binary.is_file(), "{} is missing", binary.display());

    // The release zip in a packed mirror: Terraform hashes the zip's contents.
    let packed = tempfile::tempdir().unwrap();
    let packed_dir = packed.path().join(host).join("terraform-lxd/lxd");
    std::fs::create_dir_all(&packed_dir).unwrap();
    let zip = format!("terraform-provider-lxd_{VERSION}_{PLATFORM}.zip");
    std::fs::copy(release.path().join(&zip), packed_dir.join(&zip)).unwrap();

    let fakes = Fakes::start().await;
    // lxd by the address users write, oci by the one Terraform assumes without
    // `required_providers`.
    let main_tf = root_module(Some("terraform-lxd/lxd"), None);
    let lxd_address = format!("{host}/terraform-lxd/lxd");
    let oci_address = format!("{host}/hashicorp/oci");
    for terraform in &terraforms {
        // The implied local mirror: no CLI configuration, the plugin directory under HOME.
        let mut work = Work::new(terraform, &main_tf, None);
        work.set("HOME", home.path().display().to_string());
        let plugins_arg = format!("-fs-mirror={}", plugins.display());
        let platform_arg = format!("-platform={PLATFORM}");
        work.ok(&["providers", "lock", &plugins_arg, &platform_arg]);
        let locked = work.lock_file();
        let lxd_hashes = lock_hashes(&locked, &lxd_address);
        assert_eq!(lxd_hashes.len(), 1, "{locked}");
        assert!(lxd_hashes[0].starts_with("h1:"), "{locked}");
        assert_eq!(lock_hashes(&locked, &oci_address).len(), 1, "{locked}");

        let init = tokio::task::block_in_place(|| work.ok(&["init", "-input=false"]));
        // Terraform shows addresses on its default host without the hostname.
        assert!(
            init.contains(&format!("terraform-lxd/lxd v{VERSION}")),
            "{init}"
        );
        assert_eq!(work.lock_file(), locked, "init accepted the locked hashes");
        tokio::task::block_in_place(|| apply(&mut work, &fakes));

        // The released zip hashes like the installed binary: they are the same program.
        let packed_work = Work::new(terraform, &main_tf, None);
        let packed_arg = format!("-fs-mirror={}", packed.path().display());
        packed_work.ok(&[
            "providers",
            "lock",
            &packed_arg,
            &platform_arg,
            &lxd_address,
        ]);
        let packed_h1: Vec<_> = lock_hashes(&packed_work.lock_file(), &lxd_address)
            .into_iter()
            .filter(|h| h.starts_with("h1:"))
            .collect();
        assert_eq!(
            packed_h1, lxd_hashes,
            "the installed binary is the released one"
        );
    }
}
