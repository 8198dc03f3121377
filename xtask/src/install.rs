//! `cargo xtask install`: both providers into a filesystem mirror, so that a plain
//! `terraform init` installs them like registry providers (version constraints, lock file,
//! no development overrides).
//!
//! The mirror has Terraform's unpacked layout,
//! `HOSTNAME/NAMESPACE/TYPE/VERSION/OS_ARCH/terraform-provider-TYPE_vVERSION`.
//! By default it is the user's plugin directory, which Terraform searches as an implied local
//! mirror when the CLI configuration has no `provider_installation` block.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::release::{self, Platform};

/// The hostname of a provider source address that names none: Terraform's public registry.
/// Terraform keeps the hostname in every mirror path, so an address like `terraform-lxd/lxd`
/// is looked up under this directory.
pub const DEFAULT_REGISTRY_HOST: &str = "registry.terraform.io";

/// The source addresses we install, as `(namespace, type)`: each provider under the namespace
/// configurations name in `required_providers`, and under `hashicorp`, which Terraform
/// assumes for configurations without `required_providers`.
pub const ADDRESSES: [(&str, &str); 4] = [
    ("terraform-lxd", "lxd"),
    ("hashicorp", "lxd"),
    ("oracle", "oci"),
    ("hashicorp", "oci"),
];

const HELP: &str = "\
cargo xtask install [--dir DIR]

  --dir DIR   the filesystem mirror to install into (default: Terraform's plugin directory,
              ~/.terraform.d/plugins, an implied local mirror)
";

pub fn run_install(root: &Path, invoked_from: &Path, args: &[String]) -> Result<()> {
    let dir = match args {
        [] => default_dir(|key| std::env::var_os(key))?,
        [flag, dir] if flag == "--dir" => invoked_from.join(dir),
        _ => bail!("unexpected arguments {args:?}\n\n{HELP}"),
    };
    let version = release::version(root)?;
    let bin = release::build(root)?;
    for path in install(&bin, &dir, &version, &Platform::host())? {
        println!("{}", path.display());
    }
    println!(
        "installed version {version} into {}; `terraform init` finds it with a version constraint such as \"~> {version}\"",
        dir.display()
    );
    Ok(())
}

/// Terraform's plugin directory for the current user: `%APPDATA%\terraform.d\plugins` on
/// Windows, `$HOME/.terraform.d/plugins` elsewhere.
pub fn default_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<PathBuf> {
    let (base, key) = if cfg!(windows) {
        (var("APPDATA"), "APPDATA")
    } else {
        (var("HOME"), "HOME")
    };
    let base = base
        .filter(|b| !b.is_empty())
        .with_context(|| format!("{key} is not set; pass --dir DIR"))?;
    let plugins = if cfg!(windows) {
        "terraform.d"
    } else {
        ".terraform.d"
    };
    Ok(PathBuf::from(base).join(plugins).join("plugins"))
}

/// Copies the binaries in `bin` into the mirror `dir` under every address; returns the paths.
pub fn install(bin: &Path, dir: &Path, version: &str, platform: &Platform) -> Result<Vec<PathBuf>> {
    let mut installed = Vec::new();
    for (namespace, name) in ADDRESSES {
        let package = dir
            .join(DEFAULT_REGISTRY_HOST)
            .join(namespace)
            .join(name)
            .join(version)
            .join(platform.dir_name());
        std::fs::create_dir_all(&package)
            .with_context(|| format!("creating {}", package.display()))?;
        let source = bin.join(format!("terraform-provider-{name}"));
        let target = package.join(release::executable_name(name, version));
        // Through a new file and a rename, so that a Terraform running the old binary keeps it.
        let partial = package.join(".partial");
        std::fs::copy(&source, &partial)
            .with_context(|| format!("copying {} to {}", source.display(), partial.display()))?;
        set_executable(&partial)?;
        std::fs::rename(&partial, &target)?;
        installed.push(target);
    }
    Ok(installed)
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::set_permissions(
        path,
        std::fs::Permissions::from_mode(0o755),
    )?)
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_has_terraforms_unpacked_layout() {
        let bin = tempfile::tempdir().unwrap();
        let mirror = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("terraform-provider-lxd"), b"lxd").unwrap();
        std::fs::write(bin.path().join("terraform-provider-oci"), b"oci").unwrap();
        let platform = Platform {
            os: "linux",
            arch: "arm64",
        };
        // Twice: installing over an earlier install replaces it.
        install(bin.path(), mirror.path(), "1.2.3", &platform).unwrap();
        let paths = install(bin.path(), mirror.path(), "1.2.3", &platform).unwrap();
        let relative: Vec<String> = paths
            .iter()
            .map(|p| {
                p.strip_prefix(mirror.path())
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/")
            })
            .collect();
        let host = DEFAULT_REGISTRY_HOST;
        assert_eq!(
            relative,
            [
                format!("{host}/terraform-lxd/lxd/1.2.3/linux_arm64/terraform-provider-lxd_v1.2.3"),
                format!("{host}/hashicorp/lxd/1.2.3/linux_arm64/terraform-provider-lxd_v1.2.3"),
                format!("{host}/oracle/oci/1.2.3/linux_arm64/terraform-provider-oci_v1.2.3"),
                format!("{host}/hashicorp/oci/1.2.3/linux_arm64/terraform-provider-oci_v1.2.3"),
            ]
        );
        assert_eq!(std::fs::read(&paths[3]).unwrap(), b"oci");
        let leftovers: Vec<_> = std::fs::read_dir(paths[0].parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["terraform-provider-lxd_v1.2.3"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&paths[0]).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }
    }

    #[test]
    fn default_dir_is_the_plugin_directory() {
        let home = |key: &str| (key == "HOME" || key == "APPDATA").then(|| "/h".into());
        let dir = default_dir(home).unwrap();
        if cfg!(windows) {
            assert_eq!(dir, Path::new("/h/terraform.d/plugins"));
        } else {
            assert_eq!(dir, Path::new("/h/.terraform.d/plugins"));
        }
        let error = default_dir(|_| None).unwrap_err().to_string();
        assert!(error.contains("pass --dir"), "{error}");
    }
}
