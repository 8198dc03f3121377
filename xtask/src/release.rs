//! `cargo xtask release`: the providers as the Terraform Registry publishes them.
//!
//! For each provider NAME at the version in `crates/provider/Cargo.toml`, into one directory:
//! `terraform-provider-NAME_VERSION_OS_ARCH.zip` (the binary `terraform-provider-NAME_vVERSION`
//! alone), `terraform-provider-NAME_VERSION_manifest.json` (protocol versions 5.0 and 6.0),
//! `terraform-provider-NAME_VERSION_SHA256SUMS` over both, and with `--gpg-key` a detached binary
//! signature `terraform-provider-NAME_VERSION_SHA256SUMS.sig`.
//!
//! The zips, manifests and sums are reproducible: the build remaps every machine path (checkout,
//! cargo home, target directory) and the zip has one entry with a fixed time and mode.
//! The signature is not: an OpenPGP signature carries its creation time.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::{cargo, run, target_dir};

/// The providers this workspace builds, by Terraform type name.
pub const PROVIDERS: [&str; 2] = ["lxd", "oci"];

/// The plugin protocol versions both binaries serve, as the registry manifest declares them.
pub const PROTOCOL_VERSIONS: [&str; 2] = ["5.0", "6.0"];

const HELP: &str = "\
cargo xtask release [--dir DIR] [--gpg-key ID]

  --dir DIR       where to write the archives (default: target/dist/VERSION)
  --gpg-key ID    sign the SHA256SUMS files with this GnuPG key (gpg must have its secret key)
";

struct Options {
    dir: Option<PathBuf>,
    gpg_key: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        dir: None,
        gpg_key: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => options.dir = Some(args.next().context("--dir needs a value")?.into()),
            "--gpg-key" => {
                options.gpg_key = Some(args.next().context("--gpg-key needs a value")?.clone())
            }
            other => bail!("unknown argument `{other}`\n\n{HELP}"),
        }
    }
    Ok(options)
}

pub fn run_release(root: &Path, invoked_from: &Path, args: &[String]) -> Result<()> {
    let options = parse(args)?;
    let version = version(root)?;
    let dir = match options.dir {
        Some(dir) => invoked_from.join(dir),
        None => target_dir(root).join("dist").join(&version),
    };
    let bin = build(root)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for name in PROVIDERS {
        let files = write_archives(&bin, name, &version, &Platform::host(), &dir)?;
        for file in [&files.zip, &files.manifest, &files.sums] {
            println!("{}", file.display());
        }
        if let Some(key) = &options.gpg_key {
            println!("{}", sign(key, &files.sums)?.display());
        }
    }
    Ok(())
}

/// A Terraform platform: Go's names for the operating system and architecture.
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    /// The platform xtask runs on, which is the one cargo builds for.
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform { os, arch }
    }

    /// `OS_ARCH`, as Terraform spells platforms in paths and file names.
    pub fn dir_name(&self) -> String {
        format!("{}_{}", self.os, self.arch)
    }
}

/// The version both providers are released under: the `provider` crate's.
pub fn version(root: &Path) -> Result<String> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .context("could not run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "provider"))
        .and_then(|p| p["version"].as_str())
        .map(str::to_owned)
        .context("no version of the `provider` package in cargo metadata")
}

/// Builds both provider binaries with the release profile, reproducibly; returns their directory.
///
/// On Linux with glibc the binaries are linked statically and at a fixed address (see
/// [`STATIC_FLAGS`]). Cargo rebuilds only what changed, so a second call is quick.
pub fn build(root: &Path) -> Result<PathBuf> {
    let target = target_dir(root);
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let host = host_triple()?;
    let mut flags = remap_flags(root, &cargo_home, &target);
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "-p", "provider", "--bins"]);
    let out = if links_statically(&host) {
        // With `--target`, the flags reach the binaries and their dependencies but not the build
        // scripts and proc-macros, which must stay dynamic libraries of the host.
        cmd.args(["--target", &host]);
        for flag in STATIC_FLAGS {
            flags.push('\x1f');
            flags.push_str(flag);
        }
        // rustc links with lld on this target: the startup functions go first and together.
        for flag in crate::startup_order::rustc_flags(root)? {
            flags.push('\x1f');
            flags.push_str(&flag);
        }
        cmd.env(crate::startup_order::LINKER_ENV, "1");
        target.join(&host).join("release")
    } else {
        target.join("release")
    };
    run(cmd
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_ENCODED_RUSTFLAGS", flags)
        .env_remove("RUSTFLAGS"))?;
    if links_statically(&host) {
        for name in PROVIDERS {
            let bin = out.join(format!("terraform-provider-{name}"));
            let elf = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
            if !is_static_executable(&elf) {
                bail!("{} is not a static executable", bin.display());
            }
            let name = format!("terraform-provider-{name}");
            match crate::startup_order::last_report(&target, &name) {
                Some((placed, listed)) if placed * 2 >= listed => {}
                Some((placed, listed)) => eprintln!(
                    "warning: {name}: only {placed} of the {listed} functions in {} exist; \
                     run `cargo xtask startup-order` to list them again",
                    crate::startup_order::LIST
                ),
                None => {}
            }
        }
    }
    Ok(out)
}

/// How the release binaries are linked on `*-linux-gnu`: glibc linked in (`crt-static`), at a
/// fixed address (`relocation-model=static`, no PIE).
///
/// Like the Go providers, the binary then runs on any Linux of its architecture, whatever its
/// glibc. Measured on the handshake with AutoMTLS: the dynamic loader's 11,300 relocations
/// (a page copy for each page of pointers they touch) and the loading of libc, libm and
/// libgcc_s are gone: RSS after the handshake fell from 5460 to 3920 KiB and the start by
/// about half a millisecond. glibc's own `files` and `dns` host lookups are built into the
/// static library, so names resolve through `/etc/hosts` and `/etc/resolv.conf` as before;
/// NSS modules loaded from shared libraries (`mdns`, `resolve`) are skipped.
pub const STATIC_FLAGS: [&str; 2] = ["-Ctarget-feature=+crt-static", "-Crelocation-model=static"];

/// Whether the release build links statically for `triple` (see [`STATIC_FLAGS`]).
pub fn links_statically(triple: &str) -> bool {
    triple.ends_with("-linux-gnu")
}

/// The triple rustc builds for by default.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("could not run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV names no host")
}

/// Whether `elf` is a 64-bit little-endian ELF executable at a fixed address (`ET_EXEC`) with
/// no program interpreter (`PT_INTERP`), that is linked statically without PIE.
///
/// Two fields of the header and one of each program header: a crate for ELF would be the only
/// one of its kind in xtask.
pub fn is_static_executable(elf: &[u8]) -> bool {
    const ET_EXEC: u16 = 2;
    const PT_INTERP: u32 = 3;
    fn field<const N: usize>(elf: &[u8], at: usize) -> Option<[u8; N]> {
        elf.get(at..)?.get(..N)?.try_into().ok()
    }
    let u16_at = |at| field(elf, at).map(u16::from_le_bytes);
    let u32_at = |at| field(elf, at).map(u32::from_le_bytes);
    let u64_at = |at| field(elf, at).map(u64::from_le_bytes);
    // Magic, ELFCLASS64, ELFDATA2LSB.
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) || u16_at(16) != Some(ET_EXEC) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(32), u16_at(54), u16_at(56)) else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(phnum)).all(|i| {
        let at = phoff.saturating_add(i.saturating_mul(usize::from(phentsize)));
        u32_at(at).is_some_and(|kind| kind != PT_INTERP)
    })
}

/// `--remap-path-prefix` for every machine path that could reach the binary (panic locations
/// name source files). rustc applies the last matching rule, so the most specific comes last.
fn remap_flags(root: &Path, cargo_home: &Path, target: &Path) -> String {
    let rules = [(cargo_home, "/cargo"), (root, "/src"), (target, "/target")];
    rules
        .iter()
        .map(|(from, to)| format!("--remap-path-prefix={}={to}", from.display()))
        .collect::<Vec<_>>()
        .join("\x1f")
}

/// The files of one provider's release.
pub struct Archives {
    pub zip: PathBuf,
    pub manifest: PathBuf,
    pub sums: PathBuf,
}

/// The registry's file names for provider `name` at `version`.
pub fn file_prefix(name: &str, version: &str) -> String {
    format!("terraform-provider-{name}_{version}")
}

/// The name of the executable inside the zip and in an unpacked mirror.
pub fn executable_name(name: &str, version: &str) -> String {
    format!("terraform-provider-{name}_v{version}")
}

/// Writes the zip, manifest and sums of provider `name` from the binary in `bin`.
pub fn write_archives(
    bin: &Path,
    name: &str,
    version: &str,
    platform: &Platform,
    dir: &Path,
) -> Result<Archives> {
    let source = bin.join(format!("terraform-provider-{name}"));
    let binary = std::fs::read(&source).with_context(|| format!("reading {}", source.display()))?;
    let prefix = file_prefix(name, version);
    let zip_name = format!("{prefix}_{}.zip", platform.dir_name());
    let zip = dir.join(&zip_name);
    std::fs::write(&zip, zip_bytes(&executable_name(name, version), &binary)?)?;
    let manifest_name = format!("{prefix}_manifest.json");
    let manifest = dir.join(&manifest_name);
    std::fs::write(&manifest, manifest_json())?;
    let mut sums_text = String::new();
    let mut entries = [zip_name, manifest_name];
    entries.sort();
    for entry in &entries {
        let bytes = std::fs::read(dir.join(entry))?;
        sums_text.push_str(&format!("{}  {entry}\n", sha256_hex(&bytes)));
    }
    let sums = dir.join(format!("{prefix}_SHA256SUMS"));
    std::fs::write(&sums, sums_text)?;
    Ok(Archives {
        zip,
        manifest,
        sums,
    })
}

/// A zip with one executable entry, the same bytes for the same input: a fixed time
/// (1980-01-01, the earliest a zip can say), a fixed mode, no extra fields, pure-Rust deflate.
pub fn zip_bytes(entry: &str, contents: &[u8]) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755)
        .large_file(false);
    writer.start_file(entry, options)?;
    writer.write_all(contents)?;
    Ok(writer.finish()?.into_inner())
}

/// The registry manifest: which plugin protocol versions the binaries speak.
pub fn manifest_json() -> String {
    let manifest = serde_json::json!({
        "version": 1,
        "metadata": { "protocol_versions": PROTOCOL_VERSIONS },
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&manifest).expect("a literal serialises")
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A detached binary signature `SUMS.sig`, as the registry expects it; returns its path.
fn sign(key: &str, sums: &Path) -> Result<PathBuf> {
    let gpg = crate::tools::which("gpg")
        .context("signing needs `gpg` (Debian's gnupg: `sudo apt-get install gnupg`)")?;
    let mut signature = sums.as_os_str().to_owned();
    signature.push(".sig");
    run(Command::new(gpg)
        .args([
            "--batch",
            "--yes",
            "--local-user",
            key,
            "--detach-sign",
            "--output",
        ])
        .arg(&signature)
        .arg(sums))?;
    Ok(signature.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(zip: &[u8]) -> Vec<(String, Option<u32>, Vec<u8>)> {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        (0..archive.len())
            .map(|idx| {
                let mut file = archive.by_index(idx).unwrap();
                let mut contents = Vec::new();
                std::io::copy(&mut file, &mut contents).unwrap();
                (
                    file.name().unwrap().into_owned(),
                    file.unix_mode(),
                    contents,
                )
            })
            .collect()
    }

    /// A 64-bit ELF header of type `kind` followed by program headers of the given types.
    fn elf(kind: u16, segments: &[u32]) -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[16..18].copy_from_slice(&kind.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for segment in segments {
            let mut header = vec![0u8; 56];
            header[..4].copy_from_slice(&segment.to_le_bytes());
            elf.extend(header);
        }
        elf
    }

    #[test]
    fn only_a_fixed_address_executable_without_interpreter_is_static() {
        const LOAD: u32 = 1;
        const INTERP: u32 = 3;
        assert!(is_static_executable(&elf(2, &[LOAD, LOAD])));
        assert!(!is_static_executable(&elf(2, &[LOAD, INTERP, LOAD])));
        // A position-independent executable is ET_DYN, with or without an interpreter.
        assert!(!is_static_executable(&elf(3, &[LOAD])));
        // Program headers past the end of the file, a 32-bit or big-endian file, not ELF.
        let mut truncated = elf(2, &[LOAD, LOAD]);
        truncated.truncate(64 + 56 + 2);
        assert!(!is_static_executable(&truncated));
        let mut big_endian = elf(2, &[LOAD]);
        big_endian[5] = 2;
        assert!(!is_static_executable(&big_endian));
        assert!(!is_static_executable(b"#!/bin/sh\n"));
        assert!(!is_static_executable(&[]));
        // Program headers said to start at the very end of the address space.
        let mut far = elf(2, &[LOAD]);
        far[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(!is_static_executable(&far));
        // This test binary is linked the default way: dynamically, as a PIE.
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_executable(&this));
    }

    #[test]
    fn only_glibc_linux_links_statically() {
        assert!(links_statically("x86_64-unknown-linux-gnu"));
        assert!(links_statically("aarch64-unknown-linux-gnu"));
        assert!(!links_statically("x86_64-unknown-linux-musl"));
        assert!(!links_statically("aarch64-apple-darwin"));
        assert!(!links_statically("x86_64-pc-windows-msvc"));
    }

    #[test]
    fn zip_is_the_same_for_the_same_binary() {
        let binary: Vec<u8> = (0..200_000u32).map(|n| (n * 7 % 251) as u8).collect();
        let first = zip_bytes("terraform-provider-lxd_v1.2.3", &binary).unwrap();
        let second = zip_bytes("terraform-provider-lxd_v1.2.3", &binary).unwrap();
        assert_eq!(sha256_hex(&first), sha256_hex(&second));
        assert!(first.len() < binary.len(), "the entry is deflated");
        let listed = entries(&first);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, "terraform-provider-lxd_v1.2.3");
        assert_eq!(listed[0].1.map(|m| m & 0o777), Some(0o755));
        assert_eq!(listed[0].2, binary);
    }

    #[test]
    fn archives_have_the_registry_names_and_sums() {
        let bin_dir = tempfile::tempdir().unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let (bin, out) = (bin_dir.path(), out_dir.path());
        std::fs::write(bin.join("terraform-provider-oci"), b"not really a binary").unwrap();
        let platform = Platform {
            os: "linux",
            arch: "amd64",
        };
        let files = write_archives(bin, "oci", "0.1.0", &platform, out).unwrap();
        assert_eq!(
            files.zip.file_name().unwrap(),
            "terraform-provider-oci_0.1.0_linux_amd64.zip"
        );
        assert_eq!(
            files.manifest.file_name().unwrap(),
            "terraform-provider-oci_0.1.0_manifest.json"
        );
        assert_eq!(
            files.sums.file_name().unwrap(),
            "terraform-provider-oci_0.1.0_SHA256SUMS"
        );
        let zip = std::fs::read(&files.zip).unwrap();
        let manifest = std::fs::read(&files.manifest).unwrap();
        let expected = format!(
            "{}  terraform-provider-oci_0.1.0_linux_amd64.zip\n{}  terraform-provider-oci_0.1.0_manifest.json\n",
            sha256_hex(&zip),
            sha256_hex(&manifest)
        );
        assert_eq!(std::fs::read_to_string(&files.sums).unwrap(), expected);
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(
            manifest,
            serde_json::json!({"version": 1, "metadata": {"protocol_versions": ["5.0", "6.0"]}})
        );
        assert_eq!(entries(&zip)[0].0, "terraform-provider-oci_v0.1.0");
    }

    #[test]
    fn remap_puts_the_most_specific_path_last() {
        let flags = remap_flags(
            Path::new("/home/u/checkout"),
            Path::new("/home/u/.cargo"),
            Path::new("/home/u/checkout/target"),
        );
        assert_eq!(
            flags.split('\x1f').collect::<Vec<_>>(),
            [
                "--remap-path-prefix=/home/u/.cargo=/cargo",
                "--remap-path-prefix=/home/u/checkout=/src",
                "--remap-path-prefix=/home/u/checkout/target=/target",
            ]
        );
    }

    #[test]
    fn arguments_are_checked() {
        assert!(parse(&["--gpg-key".into()]).is_err());
        assert!(parse(&["--sign".into()]).is_err());
        let options = parse(&["--dir".into(), "d".into(), "--gpg-key".into(), "K".into()]).unwrap();
        assert_eq!(options.dir, Some(PathBuf::from("d")));
        assert_eq!(options.gpg_key.as_deref(), Some("K"));
    }
}
