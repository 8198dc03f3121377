//! Tidy checks over the tracked files: things rustfmt and clippy do not catch.
//!
//! They run from `cargo xtask test` and as a plain `cargo test` (see the test below), as in
//! rust-analyzer's `tidy.rs`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

pub fn check(root: &Path) -> Result<()> {
    let files = tracked_files(root)?;
    let mut problems = Vec::new();
    for file in &files {
        let path = root.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // Binary files are not checked.
        };
        check_file(file, &text, &mut problems);
    }
    if !problems.is_empty() {
        bail!(
            "tidy found {} problem(s):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    eprintln!("xtask: tidy ok ({} tracked files)", files.len());
    Ok(())
}

fn tracked_files(root: &Path) -> Result<Vec<String>> {
    let out = Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .context("could not run git ls-files")?;
    if !out.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && root.join(l).is_file())
        .map(str::to_owned)
        .collect())
}

fn check_file(file: &str, text: &str, problems: &mut Vec<String>) {
    let is_rust = file.ends_with(".rs");
    // Fixtures are captured or copied data and stay byte for byte as they came.
    let is_text = !file.starts_with("fixtures/")
        && (is_rust
            || [
                ".md", ".toml", ".tf", ".sh", ".py", ".yml", ".yaml", ".proto",
            ]
            .iter()
            .any(|ext| file.ends_with(ext)));
    // Spelled in pieces so that this file does not flag itself.
    let forbidden_attrs = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    let machine_paths = [
        concat!("/wo", "rk/"),
        concat!("/ro", "ot/"),
        concat!("/fa", "rm/"),
    ];
    for (idx, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", idx + 1);
        if is_rust {
            for attr in forbidden_attrs {
                if line.trim_start().starts_with(attr) {
                    problems.push(format!(
                        "{at}: `{attr}]` is not allowed; assert today's behaviour and add a FIXME"
                    ));
                }
            }
        }
        if is_text && line.ends_with([' ', '\t']) {
            problems.push(format!("{at}: trailing whitespace"));
        }
        if machine_paths.iter().any(|p| line.contains(p)) {
            problems.push(format!("{at}: a path of this machine; make it relative"));
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy() {
        super::check(&crate::project_root()).unwrap();
    }

    #[test]
    fn tidy_flags_what_it_should() {
        let mut problems = Vec::new();
        let text = concat!("#[", "ignore]\nfn f() {} \nlet p = \"/ro", "ot/x\";\n");
        super::check_file("a.rs", text, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
