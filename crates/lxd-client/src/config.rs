//! Remotes as `lxc` knows them: `config.yml`, `client.crt`/`client.key` and `servercerts/` in
//! the lxc configuration directory, and the local unix socket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::secret::{ExposeSecret, SecretString};
use crate::transport::{ClientIdentity, ServerTrust, Target, fingerprint_pem};

/// The client configuration directory, as `lxc` finds it and then as `incus` does:
/// `LXD_CONF`, `INCUS_CONF`, the LXD snap's when the snap is installed, `~/.config/lxc` when it
/// exists, `~/.config/incus` when it exists, else `~/.config/lxc`.
pub fn config_dir(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    config_dir_in(var, home, &|path| path.exists())
}

fn config_dir_in(
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    for name in ["LXD_CONF", "INCUS_CONF"] {
        if let Some(dir) = var(name).filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
    }
    let home = home?;
    if exists(Path::new("/var/snap/lxd")) {
        return Some(home.join("snap/lxd/common/config"));
    }
    let (lxc, incus) = (home.join(".config/lxc"), home.join(".config/incus"));
    if !exists(&lxc) && exists(&incus) {
        return Some(incus);
    }
    Some(lxc)
}

/// The local unix socket, as `lxc` finds it and then as `incus` does: `LXD_SOCKET`,
/// `$LXD_DIR/unix.socket`, `INCUS_SOCKET`, `$INCUS_DIR/unix.socket`, the LXD snap's, then
/// `/var/lib/lxd/unix.socket` unless only `/var/lib/incus/unix.socket` exists.
pub fn local_socket(var: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    local_socket_in(var, &|path| path.exists())
}

fn local_socket_in(
    var: &dyn Fn(&str) -> Option<String>,
    exists: &dyn Fn(&Path) -> bool,
) -> PathBuf {
    for (socket_var, dir_var) in [("LXD_SOCKET", "LXD_DIR"), ("INCUS_SOCKET", "INCUS_DIR")] {
        if let Some(socket) = var(socket_var).filter(|s| !s.is_empty()) {
            return PathBuf::from(socket);
        }
        if let Some(dir) = var(dir_var).filter(|s| !s.is_empty()) {
            return Path::new(&dir).join("unix.socket");
        }
    }
    let snap = Path::new("/var/snap/lxd/common/lxd/unix.socket");
    if exists(snap) {
        return snap.to_path_buf();
    }
    let (lxd, incus) = (
        Path::new("/var/lib/lxd/unix.socket"),
        Path::new("/var/lib/incus/unix.socket"),
    );
    if !exists(lxd) && exists(incus) {
        return incus.to_path_buf();
    }
    lxd.to_path_buf()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    #[serde(default)]
    pub addr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<String>,
    #[serde(default)]
    pub public: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LxcConfig {
    #[serde(rename = "default-remote", default)]
    pub default_remote: Option<String>,
    #[serde(default)]
    pub remotes: BTreeMap<String, Remote>,
}

/// An lxc configuration directory.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    pub dir: PathBuf,
    pub config: LxcConfig,
}

impl ConfigDir {
    /// Reads `config.yml` (absent means no remotes but `local`).
    pub fn load(dir: &Path) -> Result<ConfigDir, Error> {
        let path = dir.join("config.yml");
        let config = match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| {
                Error::Config(format!("{} is not a valid lxc config: {e}", path.display()))
            })?,
            Err(_) => LxcConfig::default(),
        };
        Ok(ConfigDir {
            dir: dir.to_path_buf(),
            config,
        })
    }

    pub fn default_remote(&self) -> String {
        self.config
            .default_remote
            .clone()
            .unwrap_or_else(|| "local".to_owned())
    }

    /// The client certificate and key, if present.
    pub fn client_identity(&self) -> Result<Option<ClientIdentity>, Error> {
        let (crt, key) = (self.dir.join("client.crt"), self.dir.join("client.key"));
        match (std::fs::read_to_string(&crt), std::fs::read_to_string(&key)) {
            (Ok(cert_pem), Ok(key_pem)) => Ok(Some(ClientIdentity {
                cert_pem,
                key_pem: SecretString::from(key_pem),
            })),
            (Err(_), Err(_)) => Ok(None),
            _ => Err(Error::Config(format!(
                "only one of client.crt and client.key exists in {}",
                self.dir.display()
            ))),
        }
    }

    /// Makes a client certificate and key (ECDSA P-384, as lxc does) when there are none.
    pub fn ensure_client_identity(&self) -> Result<ClientIdentity, Error> {
        if let Some(identity) = self.client_identity()? {
            return Ok(identity);
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", self.dir.display())))?;
        let (cert_pem, key_pem) = self_signed_client_certificate("terraform-provider-lxd")?;
        write_private(&self.dir.join("client.key"), key_pem.expose_secret())?;
        std::fs::write(self.dir.join("client.crt"), &cert_pem)
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(ClientIdentity { cert_pem, key_pem })
    }

    /// The pinned server certificate of a remote (`servercerts/NAME.crt`), as a fingerprint.
    pub fn server_fingerprint(&self, remote: &str) -> Option<String> {
        let pem =
            std::fs::read_to_string(self.dir.join("servercerts").join(format!("{remote}.crt")))
                .ok()?;
        fingerprint_pem(&pem)
    }

    /// The target of a remote: `local` (or a `unix://` address) is the unix socket; an HTTPS
    /// remote needs the pinned certificate unless `accept_any` says otherwise.
    pub fn target(
        &self,
        remote: &str,
        var: &dyn Fn(&str) -> Option<String>,
        accept_any: bool,
    ) -> Result<Target, Error> {
        let entry = self.config.remotes.get(remote);
        let addr = match (remote, entry) {
            ("local", None) => "unix://".to_owned(),
            (_, Some(r)) => r.addr.clone(),
            (_, None) => {
                return Err(Error::Config(format!(
                    "no remote {remote:?} in {}",
                    self.dir.join("config.yml").display()
                )));
            }
        };
        if let Some(path) = addr.strip_prefix("unix://") {
            return Ok(Target::Unix(if path.is_empty() {
                local_socket(var)
            } else {
                PathBuf::from(path)
            }));
        }
        let trust = match (self.server_fingerprint(remote), accept_any) {
            (Some(fp), _) => ServerTrust::Pinned(fp),
            (None, true) => ServerTrust::AcceptAny,
            (None, false) => {
                return Err(Error::Config(format!(
                    "remote {remote:?} has no pinned server certificate (servercerts/{remote}.crt); accept the server certificate explicitly or add the remote with lxc"
                )));
            }
        };
        Target::https(&addr, &trust, self.client_identity()?.as_ref())
    }

    /// Records a remote in `config.yml` and pins its certificate, as `lxc remote add` does.
    pub fn add_remote(
        &mut self,
        name: &str,
        addr: &str,
        server_cert_pem: Option<&str>,
    ) -> Result<(), Error> {
        self.config.remotes.insert(
            name.to_owned(),
            Remote {
                addr: addr.to_owned(),
                protocol: Some("lxd".into()),
                auth_type: Some("tls".into()),
                public: false,
            },
        );
        std::fs::create_dir_all(self.dir.join("servercerts"))
            .map_err(|e| Error::Config(e.to_string()))?;
        if let Some(pem) = server_cert_pem {
            std::fs::write(
                self.dir.join("servercerts").join(format!("{name}.crt")),
                pem,
            )
            .map_err(|e| Error::Config(e.to_string()))?;
        }
        let text = serde_yaml::to_string(&self.config).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(self.dir.join("config.yml"), text).map_err(|e| Error::Config(e.to_string()))
    }
}

/// A self-signed client certificate and its key (ECDSA P-384, as lxc makes them), in PEM.
///
/// This is the client's only certificate maker. The provider has its own for go-plugin's
/// AutoMTLS and the fakes theirs for their server identity: the three serve different peers
/// (Terraform, LXD, test clients), and the fakes share no code with the clients so that each
/// stays the other's independent oracle.
pub fn self_signed_client_certificate(common_name: &str) -> Result<(String, SecretString), Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(|e| Error::Config(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec![common_name.to_owned()])
        .map_err(|e| Error::Config(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Config(e.to_string()))?;
    Ok((cert.pem(), SecretString::from(key.serialize_pem())))
}

fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| Error::Config(e.to_string()))
}

#[cfg(test)]
mod discovery_tests {
    use std::path::{Path, PathBuf};

    use super::{config_dir, config_dir_in, local_socket, local_socket_in};

    #[test]
    fn the_public_lookup_takes_the_variables_and_the_home_it_is_given() {
        let conf = vars(&[("LXD_CONF", "/etc/lxc-conf")]);
        assert_eq!(
            config_dir(&conf, Some(Path::new("/home/u"))),
            Some(PathBuf::from("/etc/lxc-conf"))
        );
        assert_eq!(config_dir(&vars(&[]), None), None, "no home, no variable");
        assert_eq!(
            local_socket(&vars(&[("LXD_DIR", "/tmp/lxd-dir")])),
            PathBuf::from("/tmp/lxd-dir/unix.socket")
        );
    }

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn lxd_variables_come_first_then_incus_ones() {
        let none = |_: &Path| false;
        let both = vars(&[("LXD_DIR", "/l"), ("INCUS_SOCKET", "/i.sock")]);
        assert_eq!(
            local_socket_in(&both, &none),
            PathBuf::from("/l/unix.socket")
        );
        let incus = vars(&[("INCUS_SOCKET", "/i.sock"), ("INCUS_DIR", "/i")]);
        assert_eq!(local_socket_in(&incus, &none), PathBuf::from("/i.sock"));
        let incus_dir = vars(&[("INCUS_DIR", "/i"), ("LXD_SOCKET", "")]);
        assert_eq!(
            local_socket_in(&incus_dir, &none),
            PathBuf::from("/i/unix.socket")
        );
        let conf = vars(&[("INCUS_CONF", "/ic")]);
        assert_eq!(
            config_dir_in(&conf, None, &none),
            Some(PathBuf::from("/ic"))
        );
        let both = vars(&[("INCUS_CONF", "/ic"), ("LXD_CONF", "/lc")]);
        assert_eq!(
            config_dir_in(&both, None, &none),
            Some(PathBuf::from("/lc"))
        );
    }

    #[test]
    fn incus_defaults_only_where_lxd_has_none() {
        let no_vars = vars(&[]);
        let only_incus = |p: &Path| p.starts_with("/var/lib/incus") || p.ends_with(".config/incus");
        assert_eq!(
            local_socket_in(&no_vars, &only_incus),
            PathBuf::from("/var/lib/incus/unix.socket")
        );
        assert_eq!(
            config_dir_in(&no_vars, Some(Path::new("/h")), &only_incus),
            Some(PathBuf::from("/h/.config/incus"))
        );
        let everything = |_: &Path| true;
        assert_eq!(
            config_dir_in(&no_vars, Some(Path::new("/h")), &everything),
            Some(PathBuf::from("/h/snap/lxd/common/config"))
        );
        let nothing = |_: &Path| false;
        assert_eq!(
            local_socket_in(&no_vars, &nothing),
            PathBuf::from("/var/lib/lxd/unix.socket")
        );
        assert_eq!(
            config_dir_in(&no_vars, Some(Path::new("/h")), &nothing),
            Some(PathBuf::from("/h/.config/lxc"))
        );
    }
}
