//! `fake-oci --listen 127.0.0.1:PORT [--control 127.0.0.1:PORT] [--seed FILE | --quickstart DIR] [--tls]`
//!
//! Prints one JSON line on stdout when ready, with the control API's URL and bearer token.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use fake_kit::Bind;
use fake_kit::control::{ready_line, seed_or_random};
use fake_oci::{ClockMode, Config, FakeOci};
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

#[derive(Parser)]
#[command(about = "A fake OCI Identity service for auth tokens")]
struct Args {
    /// Address of the Identity API.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address of the control API (`/_fake/`); loopback only unless forced.
    #[arg(long, default_value = "127.0.0.1:0")]
    control: SocketAddr,
    /// Let the control API listen on a non-loopback address: whoever reaches it can read
    /// every secret the fake issued.
    #[arg(long)]
    force_remote_control: bool,
    /// A JSON file of users and keys: `{"users":[{"tenancy","user","public_key_pem"}]}`.
    #[arg(long, conflicts_with = "quickstart")]
    seed: Option<PathBuf>,
    /// Create a tenancy, a user and a key pair, and write a ready OCI `config` file into DIR.
    #[arg(long)]
    quickstart: Option<PathBuf>,
    /// Serve HTTPS with a generated certificate.
    #[arg(long)]
    tls: bool,
    /// Seed of the random generator (ids, secrets); random when not given.
    #[arg(long)]
    rng_seed: Option<u64>,
}

#[derive(serde::Deserialize)]
struct SeedFile {
    users: Vec<SeedUser>,
}

#[derive(serde::Deserialize)]
struct SeedUser {
    tenancy: String,
    user: String,
    public_key_pem: String,
}

const QUICK_TENANCY: &str =
    "ocid1.tenancy.oc1..aaaaaaaaquickstarttenancy000000000000000000000000000000";
const QUICK_USER: &str =
    "ocid1.user.oc1..aaaaaaaaquickstartuser0000000000000000000000000000000000000";

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let fake = FakeOci::start(Config {
        seed: seed_or_random(args.rng_seed),
        clock: ClockMode::System,
        tls: args.tls,
        test_user: false,
        listen: args.listen,
        control: args.control,
        control_bind: if args.force_remote_control {
            Bind::Forced
        } else {
            Bind::LoopbackOnly
        },
    })
    .await?;
    let control = fake.control();
    let mut ready = serde_json::json!({
        "endpoint": fake.endpoint(),
    });
    if let Some(path) = &args.seed {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let seed: SeedFile =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for user in seed.users {
            control.add_user(&user.tenancy, &user.user, &user.public_key_pem)?;
        }
    }
    if let Some(dir) = &args.quickstart {
        std::fs::create_dir_all(dir)?;
        let mut rng = rsa::rand_core::OsRng;
        let key = rsa::RsaPrivateKey::new(&mut rng, 2048).context("generating an RSA key")?;
        let public = key.to_public_key().to_public_key_pem(LineEnding::LF)?;
        let private = key.to_pkcs8_pem(LineEnding::LF)?;
        let key_file = dir.join("oci_api_key.pem");
        write_private(&key_file, &format!("{}OCI_API_KEY\n", private.as_str()))?;
        std::fs::write(dir.join("oci_api_key_public.pem"), &public)?;
        let fingerprint = control.add_user(QUICK_TENANCY, QUICK_USER, &public)?;
        let config = format!(
            "[DEFAULT]\nuser={QUICK_USER}\nfingerprint={fingerprint}\nkey_file={}\ntenancy={QUICK_TENANCY}\nregion=us-ashburn-1\n",
            key_file.canonicalize()?.display()
        );
        let config_file = dir.join("config");
        write_private(&config_file, &config)?;
        ready["tenancy"] = QUICK_TENANCY.into();
        ready["user"] = QUICK_USER.into();
        ready["fingerprint"] = fingerprint.into();
        ready["config_file"] = config_file.canonicalize()?.display().to_string().into();
    }
    println!(
        "{}",
        ready_line(&fake.control_url(), fake.control_token(), ready)
    );
    tokio::signal::ctrl_c().await?;
    fake.shutdown().await;
    Ok(())
}

/// Writes a file readable by its owner only, as the OCI tools expect of keys and config.
fn write_private(path: &std::path::Path, contents: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
