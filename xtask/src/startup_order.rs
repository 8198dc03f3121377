//! The release binaries' startup code, linked together (`crates/provider/startup.order`).
//!
//! Before its handshake line a provider runs about 900 functions, some 480 KB of code, but the
//! linker scattered them over 62 of the 70 64-KiB stretches of `.text`. The kernel maps a whole
//! stretch around each page fault on a file (fault-around), so 3.2 MB of the 4.4 MB `.text`
//! was resident after the handshake (measured with callgrind and `/proc/PID/pagemap`).
//! lld's `--symbol-ordering-file` puts the listed functions first and together: 816 KiB of
//! `.text` stayed resident, and the handshake took 88 page faults instead of 127.
//!
//! The list names functions without their hashes (`tokio::runtime::park::...`), so it outlives
//! a new compiler or a changed dependency; C functions (glibc, aws-lc) keep their names.
//! lld wants the exact symbols of this link, so the release build links through this program
//! (`-Clinker` pointing at xtask, with [`LINKER_ENV`] set): it reads the symbols of the
//! objects rustc hands over, writes the list's symbols in the list's order, adds the
//! ordering flags and runs `cc`. `cargo xtask startup-order` regenerates the list with valgrind's
//! callgrind (the functions each provider runs up to its handshake line).

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSymbol, SymbolKind};

/// The committed list, relative to the workspace root.
pub const LIST: &str = "crates/provider/startup.order";

/// Set by the release build in cargo's environment: xtask then acts as the linker.
pub const LINKER_ENV: &str = "XTASK_STARTUP_ORDER_LINK";

/// The link argument that names the list; the wrapper takes it out before running `cc`.
const ORDER_ARG: &str = "--xtask-startup-order=";

/// A symbol's name as the list keeps it: a Rust symbol demangled without its hash (and without
/// LLVM's `.llvm.N` suffix), anything else as it is.
pub fn stable_name(symbol: &str) -> String {
    match rustc_demangle::try_demangle(symbol) {
        // LTO numbers the copies of a local function (`.1665`): the number is not stable.
        Ok(demangled) => {
            let name = format!("{demangled:#}");
            match name.rsplit_once('.') {
                Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    base.to_owned()
                }
                _ => name,
            }
        }
        Err(_) => symbol.to_owned(),
    }
}

/// The list's names: one per line, `#` starting a comment line.
pub fn parse_list(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The symbols to order, in the list's order: every defined symbol whose stable name is
/// listed (monomorphic copies share a name: all of them), and each listed name that is no
/// Rust path as it is (a C function in an archive, which lld finds by that name). Returns the
/// symbols and how many listed names matched a symbol of `defined`.
pub fn ordered_symbols(list: &[&str], defined: &[String]) -> (Vec<String>, usize) {
    let mut by_name: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for symbol in defined {
        by_name
            .entry(stable_name(symbol))
            .or_default()
            .push(symbol.as_str());
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut matched = 0;
    for name in list {
        match by_name.get(*name) {
            Some(symbols) => {
                matched += 1;
                for symbol in symbols {
                    if seen.insert(symbol.to_string()) {
                        out.push(symbol.to_string());
                    }
                }
            }
            None if !name.contains("::") && seen.insert(name.to_string()) => {
                out.push(name.to_string())
            }
            None => {}
        }
    }
    (out, matched)
}

/// The rustc flags that link through xtask with the list. They do not change with the list:
/// the provider's build script watches it, so that a new list links the binaries again
/// without rebuilding every dependency.
pub fn rustc_flags(root: &Path) -> Result<Vec<String>> {
    let list = root.join(LIST);
    if !list.is_file() {
        bail!("{} is missing", list.display());
    }
    let exe = std::env::current_exe().context("the path of xtask itself")?;
    Ok(vec![
        format!("-Clinker={}", exe.display()),
        format!("-Clink-arg={ORDER_ARG}{}", list.display()),
    ])
}

/// Where the link writes its symbol order and report: `startup-order/` in the target
/// directory, found from the output path (`TARGET/TRIPLE/release/deps/NAME-HASH`).
fn report_dir(args: &[String]) -> PathBuf {
    let output = args
        .iter()
        .position(|a| a == "-o")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_default();
    let target = output.ancestors().nth(4).unwrap_or(Path::new("."));
    target.join("startup-order")
}

/// How many of the listed Rust functions the last link of the binary `name`
/// (`terraform-provider-lxd`) found and placed, as `(placed, listed)`; C names are not counted
/// (lld places those it finds in the archives).
pub fn last_report(target: &Path, name: &str) -> Option<(usize, usize)> {
    let file = target
        .join("startup-order")
        .join(format!("{}.report", name.replace('-', "_")));
    let text = std::fs::read_to_string(file).ok()?;
    let (placed, listed) = text.trim().split_once(' ')?;
    Some((placed.parse().ok()?, listed.parse().ok()?))
}

/// One argument of a GNU response file line: `\` escapes the character after it.
fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn escape(arg: &str) -> String {
    let mut out = String::with_capacity(arg.len());
    for c in arg.chars() {
        if c == '\\' || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The linker's arguments with rustc's `@file` response files read in.
fn expand(args: Vec<OsString>) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let arg = arg
            .into_string()
            .map_err(|a| anyhow::anyhow!("a linker argument is not UTF-8: {a:?}"))?;
        match arg.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("reading the response file {file}"))?;
                out.extend(text.lines().map(unescape));
            }
            None => out.push(arg),
        }
    }
    Ok(out)
}

/// The defined functions of the object files among `args`.
fn defined_functions(args: &[String]) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for arg in args.iter().filter(|a| a.ends_with(".o")) {
        let Ok(data) = std::fs::read(arg) else {
            continue;
        };
        let file = object::File::parse(&*data).with_context(|| format!("reading {arg}"))?;
        for symbol in file.symbols() {
            if symbol.is_definition()
                && symbol.kind() == SymbolKind::Text
                && let Ok(name) = symbol.name()
            {
                names.push(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// xtask as the linker: orders the listed functions, then runs `cc` (or `XTASK_REAL_LINKER`).
pub fn link(args: Vec<OsString>) -> Result<i32> {
    let args = expand(args)?;
    let list_path = args
        .iter()
        .find_map(|a| a.strip_prefix(ORDER_ARG))
        .map(PathBuf::from);
    let mut forward: Vec<String> = args
        .iter()
        .filter(|a| !a.starts_with(ORDER_ARG))
        .cloned()
        .collect();
    if let Some(list_path) = list_path {
        let text = std::fs::read_to_string(&list_path)
            .with_context(|| format!("reading {}", list_path.display()))?;
        let list = parse_list(&text);
        let (symbols, placed) = ordered_symbols(&list, &defined_functions(&forward)?);
        let output = forward
            .iter()
            .position(|a| a == "-o")
            .and_then(|i| forward.get(i + 1))
            .map(|o| {
                Path::new(o)
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        // `terraform_provider_lxd-0123abcd`: the binary's name without cargo's hash.
        let stem = output.rsplit_once('-').map_or(output.as_str(), |(s, _)| s);
        let dir = report_dir(&forward);
        std::fs::create_dir_all(&dir)?;
        let order = dir.join(format!("{stem}.symbols"));
        std::fs::write(&order, symbols.join("\n") + "\n")?;
        std::fs::write(
            dir.join(format!("{stem}.report")),
            format!(
                "{placed} {}\n",
                list.iter().filter(|n| n.contains("::")).count()
            ),
        )?;
        forward.push(format!("-Wl,--symbol-ordering-file={}", order.display()));
        forward.push("-Wl,--no-warn-symbol-ordering".to_owned());
    }
    let linker = std::env::var("XTASK_REAL_LINKER").unwrap_or_else(|_| "cc".to_owned());
    let mut cmd = Command::new(&linker);
    // A command line as long as the one rustc had to put in a file goes in a file again.
    let length: usize = forward.iter().map(|a| a.len() + 1).sum();
    if length > 100_000 {
        let file = std::env::temp_dir().join(format!("xtask-link-{}.rsp", std::process::id()));
        let text: String = forward.iter().map(|a| escape(a) + "\n").collect();
        std::fs::write(&file, text)?;
        cmd.arg(format!("@{}", file.display()));
    } else {
        cmd.args(&forward);
    }
    let status = cmd
        .env_remove(LINKER_ENV)
        .status()
        .with_context(|| format!("could not run the linker `{linker}`"))?;
    Ok(status.code().unwrap_or(1))
}

/// `cargo xtask startup-order`: the functions each release binary runs up to its handshake
/// line, recorded with valgrind's callgrind, written to [`LIST`].
pub fn run_generate(root: &Path) -> Result<()> {
    let valgrind = std::env::var("XTASK_VALGRIND").unwrap_or_else(|_| "valgrind".to_owned());
    if Command::new(&valgrind)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        bail!("`cargo xtask startup-order` needs valgrind (Debian: apt install valgrind)");
    }
    let bins = crate::release::build(root)?;
    let work = crate::target_dir(root).join("startup-order/callgrind");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let cert = crate::bench::client_cert(&work)?;
    let mut names: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for provider in crate::release::PROVIDERS {
        let bin = bins.join(format!("terraform-provider-{provider}"));
        let out = work.join(format!("{provider}.callgrind"));
        let mut child = Command::new(&valgrind)
            .args(["--tool=callgrind", "--demangle=no"])
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(&bin)
            .envs(crate::bench::plugin_env(&cert))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting valgrind")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        // callgrind writes its file when the program ends, on a signal too.
        crate::run(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
        child.wait()?;
        if !line.starts_with("1|") {
            bail!("{} printed no handshake line under valgrind", bin.display());
        }
        let text =
            std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
        for name in callgrind_functions(&text) {
            let stable = stable_name(&name);
            if seen.insert(stable.clone()) {
                names.push(stable);
            }
        }
    }
    let mut text = String::from(
        "# The functions the providers run up to their handshake line, linked first and together\n\
         # (xtask/src/startup_order.rs). Generated by `cargo xtask startup-order`; do not edit.\n",
    );
    for name in &names {
        text.push_str(name);
        text.push('\n');
    }
    std::fs::write(root.join(LIST), text)?;
    println!("{LIST}: {} functions", names.len());
    Ok(())
}

/// The function names of a callgrind output file (`fn=(id) name`, `cfn=(id) name`; a name
/// appears once, later references give the id alone). callgrind marks recursion depth with
/// a `'N` suffix, which is dropped.
pub fn callgrind_functions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for line in text.lines() {
        let Some(rest) = line
            .strip_prefix("fn=")
            .or_else(|| line.strip_prefix("cfn="))
        else {
            continue;
        };
        let Some((_, name)) = rest.split_once(") ") else {
            continue;
        };
        let name = name.split('\'').next().unwrap_or(name);
        // Code without a symbol is named by its address, which no link can place.
        if name.starts_with("0x") {
            continue;
        }
        if seen.insert(name.to_owned()) {
            out.push(name.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKIO_PARK: &str =
        "_ZN5tokio7runtime9scheduler14current_thread7Context4park17h45ad6cac835eeac0E";

    #[test]
    fn stable_names_drop_the_hash_and_llvm_suffix_and_keep_c_names() {
        assert_eq!(
            stable_name(TOKIO_PARK),
            "tokio::runtime::scheduler::current_thread::Context::park"
        );
        assert_eq!(
            stable_name(&format!("{TOKIO_PARK}.llvm.1234")),
            "tokio::runtime::scheduler::current_thread::Context::park"
        );
        assert_eq!(
            stable_name(&format!("{TOKIO_PARK}.1665")),
            "tokio::runtime::scheduler::current_thread::Context::park"
        );
        assert_eq!(stable_name("__libc_start_main"), "__libc_start_main");
        assert_eq!(
            stable_name("memcpy.2"),
            "memcpy.2",
            "C names stay as they are"
        );
    }

    #[test]
    fn symbols_follow_the_list_with_every_copy_and_c_names_as_they_are() {
        let other_copy = TOKIO_PARK.replace("45ad6cac835eeac0", "0000000000000000");
        let defined = vec![
            "_ZN3foo3bar17h1111111111111111E".to_owned(),
            TOKIO_PARK.to_owned(),
            other_copy.clone(),
        ];
        let list = [
            "memcpy",
            "tokio::runtime::scheduler::current_thread::Context::park",
            "gone::since::then",
            "memcpy",
        ];
        let (symbols, placed) = ordered_symbols(&list, &defined);
        assert_eq!(
            symbols,
            vec!["memcpy".to_owned(), TOKIO_PARK.to_owned(), other_copy]
        );
        assert_eq!(placed, 1, "only the Rust name matched a defined symbol");
    }

    #[test]
    fn the_list_skips_comments_and_blank_lines() {
        assert_eq!(parse_list("# head\n\n a::b \nc\n#x\n"), vec!["a::b", "c"]);
    }

    #[test]
    fn callgrind_names_are_read_once_without_recursion_marks() {
        let text = "fn=(1) main\ncalls=1 0\ncfn=(2) _ZN1a1b17h0E'2\nfn=(2)\ncfn=(1)\nfn=(3) memcpy\nfn=(4) 0x00000000007ed470\n";
        assert_eq!(
            callgrind_functions(text),
            vec!["main", "_ZN1a1b17h0E", "memcpy"]
        );
    }

    #[test]
    fn response_file_arguments_round_trip() {
        for arg in ["plain", "with space", r"back\slash", r"both \ and  "] {
            assert_eq!(unescape(&escape(arg)), arg);
        }
    }

    #[test]
    fn the_report_is_read_back_by_binary_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("startup-order")).unwrap();
        std::fs::write(
            dir.path()
                .join("startup-order/terraform_provider_lxd.report"),
            "850 912\n",
        )
        .unwrap();
        assert_eq!(
            last_report(dir.path(), "terraform-provider-lxd"),
            Some((850, 912))
        );
        assert_eq!(last_report(dir.path(), "terraform-provider-oci"), None);
    }
}
