//! `terraform-provider-lxd`: its configuration (remotes as lxc knows them), and one module per
//! Terraform type.

pub mod ephemeral_trust_token;
#[cfg(test)]
mod tests;
pub mod trust_token;
pub mod trust_tokens;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use lxd_client::config::{ConfigDir, local_socket};
use lxd_client::{Client, RetryPolicy, SecretString, ServerTrust, Target};
use model::diag::{AttrPath, Diagnostic};
use model::plan::Plan;
use model::schema::TypeSchema;
use model::value::Value;

use crate::core::{Opened, Outcome, Provider};

#[derive(Default)]
pub struct LxdProvider {
    remotes: RwLock<Option<Remotes>>,
}

struct Remotes {
    default: String,
    clients: BTreeMap<String, Arc<Client>>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn string(value: &Value, name: &str) -> Option<String> {
    value
        .get(name)
        .as_str()
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn flag(value: &Value, name: &str, var: &str) -> bool {
    match value.get(name) {
        Value::Bool(b) => *b,
        _ => env(var).is_some_and(|v| v == "true" || v == "1"),
    }
}

/// A `port` as a TCP port, 1 to 65535.
fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

fn error(path: AttrPath, summary: &str, detail: impl Into<String>) -> Vec<Diagnostic> {
    vec![Diagnostic::error(path, summary, detail)]
}

/// One `remote` block.
struct RemoteBlock {
    name: String,
    address: Option<String>,
    port: Option<String>,
    default: bool,
    token: Option<SecretString>,
    password: Option<SecretString>,
}

impl LxdProvider {
    /// The client of `remote`, or of the default remote.
    pub fn client(&self, remote: Option<&str>) -> Result<Arc<Client>, Vec<Diagnostic>> {
        let guard = self.remotes.read().unwrap_or_else(|e| e.into_inner());
        let Some(remotes) = guard.as_ref() else {
            return Err(error(
                AttrPath::default(),
                "Provider not configured",
                "The lxd provider could not be configured; see the earlier error.",
            ));
        };
        let name = remote.unwrap_or(&remotes.default);
        remotes.clients.get(name).cloned().ok_or_else(|| {
            let known = remotes
                .clients
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            error(
                AttrPath::attr("remote"),
                "Unknown remote",
                format!("There is no remote {name:?}; the provider knows: {known}."),
            )
        })
    }

    async fn connect(
        block: &RemoteBlock,
        dir: &ConfigDir,
        generate: bool,
        accept_any: bool,
    ) -> Result<Client, String> {
        let address = block.address.clone().unwrap_or_default();
        let retry = RetryPolicy::default();
        if address.is_empty() || address.starts_with("unix:") || address.starts_with('/') {
            let path = address
                .trim_start_matches("unix://")
                .trim_start_matches("unix:");
            let socket = if path.is_empty() {
                local_socket(&env)
            } else {
                PathBuf::from(path)
            };
            return Ok(Client::new(Target::Unix(socket), retry));
        }
        let mut host = address
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned();
        match host.rsplit_once(':') {
            Some((_, p)) if parse_port(p).is_some() => {}
            Some((_, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!(
                    "remote {:?}: the port {p} in the address is not a TCP port (1 to 65535)",
                    block.name
                ));
            }
            _ => {
                let port = block.port.as_deref().unwrap_or("8443");
                if parse_port(port).is_none() {
                    return Err(format!(
                        "remote {:?}: port {port:?} is not a TCP port (1 to 65535)",
                        block.name
                    ));
                }
                host = format!("{host}:{port}");
            }
        }
        let token_fingerprint = match &block.token {
            Some(token) => Some(
                lxd_client::token::decode(token)
                    .map_err(|e| format!("remote {:?}: the token is {e}", block.name))?
                    .fingerprint,
            ),
            None => None,
        };
        let trust = match (
            dir.server_fingerprint(&block.name),
            token_fingerprint,
            accept_any,
        ) {
            (Some(fp), _, _) | (None, Some(fp), _) => ServerTrust::Pinned(fp),
            (None, None, true) => ServerTrust::AcceptAny,
            (None, None, false) => {
                return Err(format!(
                    "remote {:?}: the server certificate is not known; give a `token` (its fingerprint is checked), set accept_remote_certificate = true, or add the remote with lxc first",
                    block.name
                ));
            }
        };
        let identity = if generate {
            Some(dir.ensure_client_identity().map_err(|e| e.to_string())?)
        } else {
            dir.client_identity().map_err(|e| e.to_string())?
        };
        if identity.is_none() && (block.token.is_some() || block.password.is_some()) {
            return Err(format!(
                "remote {:?}: there is no client certificate in {} to make trusted; set generate_client_certificates = true",
                block.name,
                dir.dir.display()
            ));
        }
        let client = Client::new(
            Target::https(&host, &trust, identity.as_ref()).map_err(|e| e.to_string())?,
            retry,
        );
        let info = client
            .server_info()
            .await
            .map_err(|e| format!("remote {:?}: {e}", block.name))?;
        if !info.trusted {
            match (&block.token, &block.password) {
                (Some(token), _) => client
                    .consume_token(token)
                    .await
                    .map_err(|e| format!("remote {:?}: {e}", block.name))?,
                (None, Some(password)) => client
                    .consume_password(password)
                    .await
                    .map_err(|e| format!("remote {:?}: {e}", block.name))?,
                (None, None) => {}
            }
        }
        Ok(client)
    }
}

#[tonic::async_trait]
impl Provider for LxdProvider {
    fn provider_schema(&self) -> TypeSchema {
        model::provider_lxd::schema()
    }

    fn resources(&self) -> Vec<TypeSchema> {
        vec![model::lxd_trust_token::schema()]
    }

    fn data_sources(&self) -> Vec<TypeSchema> {
        vec![model::lxd_trust_tokens::schema()]
    }

    fn ephemeral_resources(&self) -> Vec<TypeSchema> {
        model::lxd_ephemeral_types()
    }

    fn validate_ephemeral(&self, type_name: &str, config: &Value) -> Vec<Diagnostic> {
        match type_name {
            model::ephemeral_lxd_trust_token::NAME => {
                model::ephemeral_lxd_trust_token::validate(config)
            }
            other => crate::core::unknown_type(other, "ephemeral resource"),
        }
    }

    async fn open_ephemeral(&self, type_name: &str, config: Value) -> Opened {
        match type_name {
            model::ephemeral_lxd_trust_token::NAME => {
                ephemeral_trust_token::open(self, config).await
            }
            other => Opened::failed(crate::core::unknown_type(other, "ephemeral resource")),
        }
    }

    async fn close_ephemeral(&self, type_name: &str, private: &[u8]) -> Vec<Diagnostic> {
        match type_name {
            model::ephemeral_lxd_trust_token::NAME => {
                ephemeral_trust_token::close(self, private).await
            }
            other => crate::core::unknown_type(other, "ephemeral resource"),
        }
    }

    fn validate_provider(&self, config: &Value) -> Vec<Diagnostic> {
        let mut diags = model::plan::validate(&self.provider_schema().block, config);
        if let Value::List(blocks) = config.get("remote") {
            for (idx, block) in blocks.iter().enumerate() {
                if string(block, "token").is_some() && string(block, "password").is_some() {
                    diags.push(Diagnostic::error(
                        AttrPath::attr("remote").index(idx).child("password"),
                        "Conflicting arguments",
                        "Give either `token` or `password`, not both.",
                    ));
                }
                if let Some(port) = string(block, "port").filter(|p| parse_port(p).is_none()) {
                    diags.push(Diagnostic::error(
                        AttrPath::attr("remote").index(idx).child("port"),
                        "Invalid value for `port`",
                        format!("`port` must be a TCP port from 1 to 65535; got {port:?}."),
                    ));
                }
                if let Some(protocol) =
                    string(block, "protocol").filter(|p| p != "lxd" && p != "incus")
                {
                    diags.push(Diagnostic::error(
                        AttrPath::attr("remote").index(idx).child("protocol"),
                        "Invalid value for `protocol`",
                        format!("Expected \"lxd\" or \"incus\"; got {protocol:?}."),
                    ));
                }
            }
        }
        diags
    }

    fn validate(&self, type_name: &str, config: &Value) -> Vec<Diagnostic> {
        match type_name {
            model::lxd_trust_token::NAME => model::lxd_trust_token::validate(config),
            model::lxd_trust_tokens::NAME => model::lxd_trust_tokens::validate(config),
            _ => Vec::new(),
        }
    }

    async fn configure(&self, config: &Value) -> Vec<Diagnostic> {
        if config.contains_unknown() {
            return error(
                AttrPath::default(),
                "Provider configuration not known",
                "The lxd provider's settings depend on values not known until apply.",
            );
        }
        let home = env("HOME").map(PathBuf::from);
        let dir = match string(config, "config_dir")
            .map(PathBuf::from)
            .or_else(|| lxd_client::config::config_dir(&env, home.as_deref()))
        {
            Some(d) => d,
            None => {
                return error(
                    AttrPath::attr("config_dir"),
                    "No lxc configuration directory",
                    "Set config_dir, LXD_CONF or HOME.",
                );
            }
        };
        let dir = match ConfigDir::load(&dir) {
            Ok(d) => d,
            Err(e) => {
                return error(
                    AttrPath::attr("config_dir"),
                    "Invalid lxc configuration",
                    e.to_string(),
                );
            }
        };
        let generate = flag(
            config,
            "generate_client_certificates",
            "LXD_GENERATE_CLIENT_CERTS",
        );
        let accept_any = flag(
            config,
            "accept_remote_certificate",
            "LXD_ACCEPT_SERVER_CERTIFICATE",
        );
        let blocks: Vec<RemoteBlock> = match config.get("remote") {
            Value::List(items) => items
                .iter()
                .map(|b| RemoteBlock {
                    name: string(b, "name").unwrap_or_default(),
                    address: string(b, "address"),
                    port: string(b, "port"),
                    default: b.get("default") == &Value::Bool(true),
                    token: string(b, "token").map(SecretString::from),
                    password: string(b, "password").map(SecretString::from),
                })
                .collect(),
            _ => Vec::new(),
        };
        let mut clients = BTreeMap::new();
        let default;
        if blocks.is_empty() {
            // As lxc does: the lxc configuration's remotes, and the local unix socket.
            default = dir.default_remote();
            let mut names: Vec<String> = dir.config.remotes.keys().cloned().collect();
            names.push("local".into());
            for name in names {
                if let Ok(target) = dir.target(&name, &env, accept_any) {
                    clients.insert(name, Arc::new(Client::new(target, RetryPolicy::default())));
                }
            }
        } else {
            default = blocks
                .iter()
                .find(|b| b.default)
                .or(blocks.first())
                .map(|b| b.name.clone())
                .unwrap_or_default();
            for (idx, block) in blocks.iter().enumerate() {
                match Self::connect(block, &dir, generate, accept_any).await {
                    Ok(client) => {
                        clients.insert(block.name.clone(), Arc::new(client));
                    }
                    Err(message) => {
                        return error(
                            AttrPath::attr("remote").index(idx),
                            "Cannot use this LXD remote",
                            message,
                        );
                    }
                }
            }
        }
        tracing::info!(default = %default, remotes = clients.len(), "lxd provider configured");
        *self.remotes.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Remotes { default, clients });
        Vec::new()
    }

    fn plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> Result<Plan, Vec<Diagnostic>> {
        match type_name {
            model::lxd_trust_token::NAME => Ok(model::lxd_trust_token::plan(prior, config)),
            other => Err(crate::core::unknown_type(other, "resource")),
        }
    }

    async fn apply(
        &self,
        type_name: &str,
        prior: Option<Value>,
        planned: Option<Value>,
        config: Value,
    ) -> Outcome {
        self.apply_private(type_name, prior, planned, config, Vec::new())
            .await
            .0
    }

    async fn read(&self, type_name: &str, current: Value) -> Outcome {
        self.read_private(type_name, current, Vec::new()).await.0
    }

    async fn import(&self, type_name: &str, id: &str) -> Outcome {
        self.import_private(type_name, id).await.0
    }

    async fn read_data(&self, type_name: &str, config: Value) -> Outcome {
        match type_name {
            model::lxd_trust_tokens::NAME => trust_tokens::read(self, config).await,
            _ => (None, crate::core::unknown_type(type_name, "data source")),
        }
    }

    async fn read_private(
        &self,
        type_name: &str,
        current: Value,
        private: Vec<u8>,
    ) -> (Outcome, Vec<u8>) {
        match type_name {
            model::lxd_trust_token::NAME => trust_token::read(self, current, private).await,
            _ => ((Some(current), Vec::new()), private),
        }
    }

    async fn apply_private(
        &self,
        type_name: &str,
        prior: Option<Value>,
        planned: Option<Value>,
        _config: Value,
        private: Vec<u8>,
    ) -> (Outcome, Vec<u8>) {
        match type_name {
            model::lxd_trust_token::NAME => trust_token::apply(self, prior, planned, private).await,
            _ => ((None, Vec::new()), private),
        }
    }

    async fn import_private(&self, type_name: &str, id: &str) -> (Outcome, Vec<u8>) {
        match type_name {
            model::lxd_trust_token::NAME => trust_token::import(self, id).await,
            _ => ((None, Vec::new()), Vec::new()),
        }
    }

    fn plan_warnings(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        plan: &Plan,
    ) -> Vec<Diagnostic> {
        match type_name {
            model::lxd_trust_token::NAME => model::lxd_trust_token::plan_warnings(prior, plan),
            _ => Vec::new(),
        }
    }

    async fn check_plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        prior_private: &[u8],
        plan: &Plan,
    ) -> Vec<Diagnostic> {
        match type_name {
            model::lxd_trust_token::NAME => {
                trust_token::check_plan(self, prior, prior_private, plan).await
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod protocol_tests {
    use model::value::Value;

    use super::LxdProvider;
    use crate::core::Provider;

    fn remote_with_protocol(protocol: &str) -> Value {
        Value::object([(
            "remote",
            Value::List(vec![Value::object([
                ("name", Value::string("r")),
                ("protocol", Value::string(protocol)),
            ])]),
        )])
    }

    #[test]
    fn a_remote_speaks_lxd_or_incus() {
        let provider = LxdProvider::default();
        for protocol in ["lxd", "incus"] {
            let diags = provider.validate_provider(&remote_with_protocol(protocol));
            assert!(diags.is_empty(), "{protocol}: {diags:?}");
        }
        let diags = provider.validate_provider(&remote_with_protocol("simplestreams"));
        assert_eq!(diags.len(), 1, "{diags:?}");
        let text = format!("{diags:?}");
        assert!(
            text.contains("protocol") && text.contains("simplestreams"),
            "{text}"
        );
    }
}
