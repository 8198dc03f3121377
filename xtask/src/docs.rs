//! `cargo xtask docs`: writes `docs/` and `examples/` from the model schema.
//!
//! With `--check` (as `cargo xtask test` runs it) nothing is written; stale files fail.

use std::path::Path;

use anyhow::{Result, bail};

pub fn run(root: &Path, check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for page in model::docs::pages() {
        let path = root.join(&page.path);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == page.content {
            continue;
        }
        if check {
            stale.push(page.path);
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, &page.content)?;
            eprintln!("xtask: wrote {}", page.path);
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated docs are stale: {}\nrun `cargo xtask docs` and commit the result",
            stale.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_docs_are_fresh() {
        super::run(&crate::project_root(), true).unwrap();
    }
}
