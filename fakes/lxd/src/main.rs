//! `fake-lxd --unix PATH --https 127.0.0.1:PORT [--profile 5.0|6|incus-6.0] [--control 127.0.0.1:PORT]`
//!
//! Prints one JSON line on stdout when ready, with the control API's URL and bearer token.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use fake_kit::Bind;
use fake_kit::control::{ready_line, seed_or_random};
use fake_lxd::{ClockMode, Config, FakeLxd, Profile};

#[derive(Parser)]
#[command(about = "A fake LXD daemon for trust tokens")]
struct Args {
    /// The unix socket to listen on (its clients are trusted).
    #[arg(long)]
    unix: PathBuf,
    /// The HTTPS address (`core.https_address`).
    #[arg(long, default_value = "127.0.0.1:0")]
    https: SocketAddr,
    /// Which server to imitate: `5.0` (Debian's LXD 5.0.2), `6` (newer LXD) or `incus-6.0`
    /// (Incus 6.0 LTS).
    #[arg(long, default_value = "5.0", value_parser = ["5.0", "6", "incus-6.0"])]
    profile: String,
    /// The control API's address (`/_fake/`); loopback only unless forced.
    #[arg(long, default_value = "127.0.0.1:0")]
    control: SocketAddr,
    /// Let the control API listen on a non-loopback address: whoever reaches it can read
    /// every secret the fake issued.
    #[arg(long)]
    force_remote_control: bool,
    /// Seed of the random generator (ids, secrets); random when not given.
    #[arg(long)]
    seed: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let fake = FakeLxd::start(Config {
        profile: Profile::from_name(&args.profile).unwrap_or(Profile::V5_0),
        seed: seed_or_random(args.seed),
        clock: ClockMode::System,
        unix_socket: Some(args.unix.clone()),
        https: args.https,
        control: args.control,
        control_bind: if args.force_remote_control {
            Bind::Forced
        } else {
            Bind::LoopbackOnly
        },
        https_address_set: true,
    })
    .await?;
    let ready = serde_json::json!({
        "unix": fake.unix_socket(),
        "https": fake.https_addr().to_string(),
        "fingerprint": fake.server_fingerprint(),
        "profile": args.profile,
    });
    println!(
        "{}",
        ready_line(&fake.control_url(), fake.control_token(), ready)
    );
    tokio::signal::ctrl_c().await?;
    fake.shutdown().await;
    Ok(())
}
