//! A small Terraform core over the plugin protocol: it keeps state as Terraform does (JSON,
//! upgraded and refreshed before planning), plans with Terraform's proposed-new-state rule,
//! applies replacements destroy-first, and holds the provider to Terraform's checks (a plan
//! must keep configured values; an apply must keep what the plan knew).
//!
//! It understands the subset of Terraform's JSON syntax the scenarios use: `variable` with
//! `default`, `resource`, `data`, `ephemeral`, `output`, and `${...}` references to
//! `var.NAME`, `TYPE.NAME.ATTR`, `data.TYPE.NAME.ATTR` and `ephemeral.TYPE.NAME.ATTR`
//! (resources may refer to variables and data sources; data sources to variables; ephemeral
//! resources to anything but ephemeral resources after them; outputs to anything but ephemeral
//! resources). Everything is applied in address order, one at a time.
//!
//! Ephemeral resources follow Terraform 1.11: each phase (the plan, then the apply) validates
//! and opens every ephemeral resource anew and closes it when the phase ends, with the private
//! data of its Open. A configuration not wholly known is not opened (its value is unknown).
//! An ephemeral resource that refers to managed resources is opened after them (in a plan once
//! they are planned, in an apply once they are applied), the others before any of them.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, anyhow, bail};
use provider::proto::tfplugin6 as pb;
use serde_json::{Map, Value as Json, json};

use crate::rpc::Rpc;
use crate::scenario::Vars;
use crate::wire::{self, Block, UNKNOWN};

#[derive(Debug, Clone)]
struct Instance {
    type_name: String,
    /// The state as Terraform stores it: JSON.
    json: Json,
    private: Vec<u8>,
}

/// An object as the provider returned it (refreshed or planned): its msgpack to send back,
/// the same decoded, and its private bytes.
#[derive(Debug, Clone)]
struct Object {
    type_name: String,
    msgpack: Vec<u8>,
    json: Json,
    private: Vec<u8>,
}

/// One planned change of a managed resource.
#[derive(Debug, Clone)]
struct Change {
    address: String,
    type_name: String,
    actions: Vec<&'static str>,
    /// The refreshed prior object, if any.
    prior: Option<Object>,
    planned: Option<Object>,
    config: Vec<u8>,
}

/// An ephemeral resource opened in the current phase: what Renew and Close need.
#[derive(Debug, Clone)]
struct Opened {
    address: String,
    type_name: String,
    /// The private data of Open: Close gets these, not those of a later Renew.
    private: Vec<u8>,
    /// When the provider asked to be renewed (Unix seconds).
    renew_at: Option<i64>,
}

/// A plan: the changes, the refreshed objects and the data sources read.
type Planned = (
    Vec<Change>,
    BTreeMap<String, Object>,
    BTreeMap<String, Json>,
);

pub struct Engine {
    rpc: Box<dyn Rpc>,
    provider_block: Block,
    resources: BTreeMap<String, Block>,
    data_sources: BTreeMap<String, Block>,
    ephemerals: BTreeMap<String, Block>,
    /// The root module without a provider block, and the provider block.
    module: Json,
    provider_config: Json,
    state: BTreeMap<String, Instance>,
    data: BTreeMap<String, Json>,
    outputs: Map<String, Json>,
    /// The results of the ephemeral resources of the current phase ([`UNKNOWN`] when not
    /// opened because their configuration was not wholly known).
    ephemeral: BTreeMap<String, Json>,
    opened: Vec<Opened>,
    /// Every value of a sensitive attribute that an Open returned.
    ephemeral_secrets: BTreeSet<String>,
}

fn dynamic(msgpack: Vec<u8>) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack,
        json: Vec::new(),
    })
}

fn bytes(value: &Option<pb::DynamicValue>) -> Vec<u8> {
    value
        .as_ref()
        .map(|v| v.msgpack.clone())
        .unwrap_or_default()
}

/// Fails on error diagnostics, with their text (which must never hold a secret).
fn check(what: &str, diags: &[pb::Diagnostic]) -> Result<()> {
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("{what}: {}", errors.join("; "))
    }
}

impl Engine {
    pub async fn new(mut rpc: Box<dyn Rpc>, module: Json, provider_config: Json) -> Result<Engine> {
        let schema = rpc
            .get_provider_schema(pb::get_provider_schema::Request {})
            .await?;
        check("GetProviderSchema", &schema.diagnostics)?;
        let block = |s: &pb::Schema| {
            Block::from_proto(
                s.block
                    .as_ref()
                    .ok_or_else(|| anyhow!("a schema without a block"))?,
            )
        };
        let provider_block = block(
            schema
                .provider
                .as_ref()
                .ok_or_else(|| anyhow!("no provider schema"))?,
        )?;
        let resources = schema
            .resource_schemas
            .iter()
            .map(|(k, s)| Ok((k.clone(), block(s)?)))
            .collect::<Result<_>>()?;
        let data_sources = schema
            .data_source_schemas
            .iter()
            .map(|(k, s)| Ok((k.clone(), block(s)?)))
            .collect::<Result<_>>()?;
        let ephemerals = schema
            .ephemeral_resource_schemas
            .iter()
            .map(|(k, s)| Ok((k.clone(), block(s)?)))
            .collect::<Result<_>>()?;
        Ok(Engine {
            rpc,
            provider_block,
            resources,
            data_sources,
            ephemerals,
            module,
            provider_config,
            state: BTreeMap::new(),
            data: BTreeMap::new(),
            outputs: Map::new(),
            ephemeral: BTreeMap::new(),
            opened: Vec::new(),
            ephemeral_secrets: BTreeSet::new(),
        })
    }

    /// The sensitive values the ephemeral resources' Opens returned so far (they must appear
    /// in no log and no plan).
    pub fn ephemeral_secrets(&self) -> &BTreeSet<String> {
        &self.ephemeral_secrets
    }

    pub fn outputs(&self) -> Json {
        Json::Object(self.outputs.clone())
    }

    /// As every Terraform command starts: validate and configure the provider.
    async fn configure(&mut self) -> Result<()> {
        let config = wire::encode_block(&self.provider_block, &self.provider_config)?;
        let valid = self
            .rpc
            .validate_provider_config(pb::validate_provider_config::Request {
                config: dynamic(config.clone()),
            })
            .await?;
        check("ValidateProviderConfig", &valid.diagnostics)?;
        let configured = self
            .rpc
            .configure_provider(pb::configure_provider::Request {
                terraform_version: "1.11.4".to_owned(),
                config: dynamic(config),
                client_capabilities: None,
            })
            .await?;
        check("ConfigureProvider", &configured.diagnostics)
    }

    fn section(&self, name: &str) -> Vec<(String, String, Json)> {
        let mut out = Vec::new();
        if let Some(types) = self.module.get(name).and_then(Json::as_object) {
            for (type_name, named) in types {
                if let Some(named) = named.as_object() {
                    for (name, body) in named {
                        out.push((type_name.clone(), name.clone(), body.clone()));
                    }
                }
            }
        }
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    fn var(&self, vars: &Vars, name: &str) -> Result<Json> {
        if let Some(v) = vars.get(name) {
            return Ok(json!(v));
        }
        self.module
            .pointer(&format!("/variable/{name}/default"))
            .cloned()
            .ok_or_else(|| anyhow!("variable {name} has no value"))
    }

    /// The value of one reference.
    fn resolve(&self, expr: &str, vars: &Vars, planned: &BTreeMap<String, Json>) -> Result<Json> {
        let parts: Vec<&str> = expr.trim().split('.').collect();
        let (root, path) = match parts.as_slice() {
            ["var", name] => return self.var(vars, name),
            ["data", t, n, path @ ..] => (self.data.get(&format!("data.{t}.{n}")), path),
            ["ephemeral", t, n, path @ ..] => {
                let address = format!("ephemeral.{t}.{n}");
                match self.ephemeral.get(&address) {
                    Some(value) => (Some(value), path),
                    None => bail!("{address} is not open"),
                }
            }
            [t, n, path @ ..] => {
                let address = format!("{t}.{n}");
                (
                    planned
                        .get(&address)
                        .or_else(|| self.state.get(&address).map(|i| &i.json)),
                    path,
                )
            }
            _ => bail!("the kit cannot evaluate ${{{expr}}}"),
        };
        let mut value = root.cloned().unwrap_or(Json::Null);
        for step in path {
            if value.as_str() == Some(UNKNOWN) {
                break;
            }
            value = match step.parse::<usize>() {
                Ok(i) => value.get(i).cloned().unwrap_or(Json::Null),
                Err(_) => value.get(*step).cloned().unwrap_or(Json::Null),
            };
        }
        Ok(value)
    }

    /// Evaluates the `${...}` templates in a configuration value.
    fn eval(&self, value: &Json, vars: &Vars, planned: &BTreeMap<String, Json>) -> Result<Json> {
        Ok(match value {
            Json::String(s) => {
                if let Some(inner) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
                    && !inner.contains("${")
                {
                    return self.resolve(inner, vars, planned);
                }
                let mut out = String::new();
                let mut rest = s.as_str();
                while let Some(open) = rest.find("${") {
                    out.push_str(&rest[..open]);
                    let close = rest[open..]
                        .find('}')
                        .ok_or_else(|| anyhow!("unclosed template in {s:?}"))?;
                    let v = self.resolve(&rest[open + 2..open + close], vars, planned)?;
                    match v {
                        Json::String(t) if t == UNKNOWN => return Ok(json!(UNKNOWN)),
                        Json::String(t) => out.push_str(&t),
                        Json::Null => bail!("a null value in template {s:?}"),
                        other => out.push_str(&other.to_string()),
                    }
                    rest = &rest[open + close + 1..];
                }
                out.push_str(rest);
                json!(out)
            }
            Json::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|i| self.eval(i, vars, planned))
                    .collect::<Result<_>>()?,
            ),
            Json::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), self.eval(v, vars, planned)?)))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }

    fn schema(&self, type_name: &str) -> Result<&Block> {
        self.resources
            .get(type_name)
            .ok_or_else(|| anyhow!("the provider has no resource type {type_name}"))
    }

    /// UpgradeResourceState then ReadResource for every instance, as a plan begins.
    async fn refreshed(&mut self) -> Result<BTreeMap<String, Object>> {
        let mut out = BTreeMap::new();
        for (address, instance) in self.state.clone() {
            let upgraded = self
                .rpc
                .upgrade_resource_state(pb::upgrade_resource_state::Request {
                    type_name: instance.type_name.clone(),
                    version: 0,
                    raw_state: Some(pb::RawState {
                        json: serde_json::to_vec(&instance.json)?,
                        flatmap: Default::default(),
                    }),
                })
                .await?;
            check(
                &format!("UpgradeResourceState {address}"),
                &upgraded.diagnostics,
            )?;
            let read = self
                .rpc
                .read_resource(pb::read_resource::Request {
                    type_name: instance.type_name.clone(),
                    current_state: upgraded.upgraded_state,
                    private: instance.private.clone(),
                    provider_meta: None,
                    client_capabilities: None,
                })
                .await?;
            check(&format!("ReadResource {address}"), &read.diagnostics)?;
            let msgpack = bytes(&read.new_state);
            let json = wire::decode(&msgpack)?;
            if !json.is_null() {
                let object = Object {
                    type_name: instance.type_name,
                    msgpack,
                    json,
                    private: read.private,
                };
                out.insert(address, object);
            }
        }
        Ok(out)
    }

    async fn read_data(&mut self, vars: &Vars) -> Result<BTreeMap<String, Json>> {
        let mut out = BTreeMap::new();
        for (type_name, name, body) in self.section("data") {
            let block = self
                .data_sources
                .get(&type_name)
                .ok_or_else(|| anyhow!("the provider has no data source {type_name}"))?
                .clone();
            let config = self.eval(&body, vars, &BTreeMap::new())?;
            let config = wire::encode_block(&block, &config)
                .with_context(|| format!("data.{type_name}.{name}"))?;
            let valid = self
                .rpc
                .validate_data_resource_config(pb::validate_data_resource_config::Request {
                    type_name: type_name.clone(),
                    config: dynamic(config.clone()),
                })
                .await?;
            check(&format!("data.{type_name}.{name}"), &valid.diagnostics)?;
            let read = self
                .rpc
                .read_data_source(pb::read_data_source::Request {
                    type_name: type_name.clone(),
                    config: dynamic(config),
                    provider_meta: None,
                    client_capabilities: None,
                })
                .await?;
            check(&format!("ReadDataSource {type_name}"), &read.diagnostics)?;
            out.insert(
                format!("data.{type_name}.{name}"),
                wire::decode(&bytes(&read.state))?,
            );
        }
        Ok(out)
    }

    /// Validates and opens the ephemeral resources that refer to managed resources
    /// (`after_resources`) or those that do not; `planned` holds the managed resources' planned
    /// values in a plan (in an apply, their state is used).
    async fn open_ephemerals(
        &mut self,
        vars: &Vars,
        planned: &BTreeMap<String, Json>,
        after_resources: bool,
    ) -> Result<()> {
        for (type_name, name, body) in self.section("ephemeral") {
            if refers_to_resources(&body) != after_resources {
                continue;
            }
            let address = format!("ephemeral.{type_name}.{name}");
            let block = self
                .ephemerals
                .get(&type_name)
                .ok_or_else(|| anyhow!("the provider has no ephemeral resource {type_name}"))?
                .clone();
            let config_json = self.eval(&body, vars, planned)?;
            let config =
                wire::encode_block(&block, &config_json).with_context(|| address.clone())?;
            let valid = self
                .rpc
                .validate_ephemeral_resource_config(
                    pb::validate_ephemeral_resource_config::Request {
                        type_name: type_name.clone(),
                        config: dynamic(config.clone()),
                    },
                )
                .await?;
            check(&address, &valid.diagnostics)?;
            if wire::has_unknown(&wire::decode(&config)?) {
                // Terraform does not open it: its value stays unknown in this phase.
                self.ephemeral.insert(address, json!(UNKNOWN));
                continue;
            }
            let resp = self
                .rpc
                .open_ephemeral_resource(pb::open_ephemeral_resource::Request {
                    type_name: type_name.clone(),
                    config: dynamic(config),
                    client_capabilities: None,
                })
                .await?;
            check(
                &format!("OpenEphemeralResource {address}"),
                &resp.diagnostics,
            )?;
            if resp.deferred.is_some() {
                bail!("{address}: Open was deferred, which Terraform did not allow");
            }
            let result = wire::decode(&bytes(&resp.result))?;
            if wire::has_unknown(&result) || result.is_null() {
                bail!("{address}: Open returned a result that is not wholly known");
            }
            for attr in block.attrs.iter().filter(|a| a.sensitive) {
                if let Some(secret) = result.get(&attr.name).and_then(Json::as_str) {
                    self.ephemeral_secrets.insert(secret.to_owned());
                }
            }
            self.ephemeral.insert(address.clone(), result);
            self.opened.push(Opened {
                address,
                type_name,
                private: resp.private.unwrap_or_default(),
                renew_at: resp.renew_at.map(|t| t.seconds),
            });
        }
        Ok(())
    }

    /// As a phase ends: renews what is due (with the private data of the latest Open or
    /// Renew), then closes every ephemeral resource with the private data of its Open.
    async fn close_ephemerals(&mut self) -> Result<()> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let mut errors = Vec::new();
        for opened in std::mem::take(&mut self.opened) {
            if opened.renew_at.is_some_and(|at| at <= now) {
                let resp = self
                    .rpc
                    .renew_ephemeral_resource(pb::renew_ephemeral_resource::Request {
                        type_name: opened.type_name.clone(),
                        private: Some(opened.private.clone()),
                    })
                    .await?;
                if let Err(e) = check(
                    &format!("RenewEphemeralResource {}", opened.address),
                    &resp.diagnostics,
                ) {
                    errors.push(e.to_string());
                }
            }
            let resp = self
                .rpc
                .close_ephemeral_resource(pb::close_ephemeral_resource::Request {
                    type_name: opened.type_name.clone(),
                    private: Some(opened.private),
                })
                .await?;
            if let Err(e) = check(
                &format!("CloseEphemeralResource {}", opened.address),
                &resp.diagnostics,
            ) {
                errors.push(e.to_string());
            }
        }
        self.ephemeral.clear();
        if !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(())
    }

    /// Terraform's proposed new state: the configuration, with the prior value wherever an
    /// attribute is computed and not configured.
    fn proposed(block: &Block, prior: &Json, config: &Json) -> Json {
        let mut out = Map::new();
        for attr in &block.attrs {
            let c = config.get(&attr.name).cloned().unwrap_or(Json::Null);
            let v = if attr.computed && c.is_null() {
                prior.get(&attr.name).cloned().unwrap_or(Json::Null)
            } else {
                c
            };
            out.insert(attr.name.clone(), v);
        }
        for nested in &block.blocks {
            out.insert(
                nested.name.clone(),
                config.get(&nested.name).cloned().unwrap_or(Json::Null),
            );
        }
        Json::Object(out)
    }

    /// One PlanResourceChange; `prior_private` is the prior's private state, or on the second
    /// call of a replacement (no prior) what the first call planned, as Terraform sends it.
    async fn plan_one(
        &mut self,
        type_name: &str,
        prior: Option<&Object>,
        prior_private: Vec<u8>,
        config_json: &Json,
        config: &[u8],
    ) -> Result<(Object, Vec<pb::AttributePath>)> {
        let block = self.schema(type_name)?.clone();
        let prior_json = prior.map(|p| p.json.clone()).unwrap_or(Json::Null);
        let proposed = Self::proposed(&block, &prior_json, config_json);
        let resp = self
            .rpc
            .plan_resource_change(pb::plan_resource_change::Request {
                type_name: type_name.to_owned(),
                prior_state: dynamic(prior.map(|p| p.msgpack.clone()).unwrap_or_else(wire::null)),
                proposed_new_state: dynamic(wire::encode_block(&block, &proposed)?),
                config: dynamic(config.to_vec()),
                prior_private,
                provider_meta: None,
                client_capabilities: None,
            })
            .await?;
        check(
            &format!("PlanResourceChange {type_name}"),
            &resp.diagnostics,
        )?;
        let planned = bytes(&resp.planned_state);
        let json = wire::decode(&planned)?;
        // Terraform's check: a configured value the provider may not change.
        for attr in &block.attrs {
            let c = config_json.get(&attr.name).cloned().unwrap_or(Json::Null);
            let p = json.get(&attr.name).cloned().unwrap_or(Json::Null);
            if (!attr.computed || !c.is_null()) && c != p {
                bail!(
                    "Provider produced invalid plan for {type_name}: planned {} = {p}, configured {c}",
                    attr.name
                );
            }
        }
        let object = Object {
            type_name: type_name.to_owned(),
            msgpack: planned,
            json,
            private: resp.planned_private,
        };
        Ok((object, resp.requires_replace))
    }

    async fn plan_changes(&mut self, vars: &Vars, destroy: bool) -> Result<Planned> {
        self.configure().await?;
        let mut refreshed = self.refreshed().await?;
        if destroy && !self.state.is_empty() {
            // As Terraform plans a destroy: a normal plan first, for its refresh (it opens and
            // closes the ephemeral resources too), then the destroy plan from its result.
            let (_, pre_destroy, _) = self.plan_walk(vars, false, refreshed).await?;
            refreshed = pre_destroy;
        }
        self.plan_walk(vars, destroy, refreshed).await
    }

    /// One plan walk from refreshed objects.
    async fn plan_walk(
        &mut self,
        vars: &Vars,
        destroy: bool,
        refreshed: BTreeMap<String, Object>,
    ) -> Result<Planned> {
        let data = if destroy {
            BTreeMap::new()
        } else {
            self.read_data(vars).await?
        };
        let saved = std::mem::replace(&mut self.data, data.clone());
        if !destroy {
            self.open_ephemerals(vars, &BTreeMap::new(), false).await?;
        }
        let mut changes = Vec::new();
        let mut configured = Vec::new();
        let resources = if destroy {
            Vec::new()
        } else {
            self.section("resource")
        };
        for (type_name, name, body) in resources {
            let address = format!("{type_name}.{name}");
            configured.push(address.clone());
            let block = self.schema(&type_name)?.clone();
            let config_json = self.eval(&body, vars, &BTreeMap::new())?;
            let config =
                wire::encode_block(&block, &config_json).with_context(|| address.clone())?;
            let full = wire::decode(&config)?;
            let valid = self
                .rpc
                .validate_resource_config(pb::validate_resource_config::Request {
                    type_name: type_name.clone(),
                    config: dynamic(config.clone()),
                    client_capabilities: None,
                })
                .await?;
            check(&address, &valid.diagnostics)?;
            let prior = refreshed.get(&address);
            let private = prior.map(|p| p.private.clone()).unwrap_or_default();
            let (planned, replace) = self
                .plan_one(&type_name, prior, private, &full, &config)
                .await?;
            let (actions, planned) = match prior {
                None => (vec!["create"], planned),
                Some(p) if p.json == planned.json => (vec!["no-op"], planned),
                Some(_) if !replace.is_empty() => {
                    // As Terraform does for a replacement: plan the create without a prior.
                    let private = planned.private.clone();
                    let (planned, _) = self
                        .plan_one(&type_name, None, private, &full, &config)
                        .await?;
                    (vec!["delete", "create"], planned)
                }
                Some(_) => (vec!["update"], planned),
            };
            changes.push(Change {
                address,
                type_name,
                actions,
                prior: prior.cloned(),
                planned: Some(planned),
                config,
            });
        }
        for (address, p) in &refreshed {
            if !configured.contains(address) {
                changes.push(Change {
                    address: address.clone(),
                    type_name: p.type_name.clone(),
                    actions: vec!["delete"],
                    prior: Some(p.clone()),
                    planned: None,
                    config: wire::null(),
                });
            }
        }
        if !destroy {
            let planned: BTreeMap<String, Json> = changes
                .iter()
                .filter_map(|c| Some((c.address.clone(), c.planned.as_ref()?.json.clone())))
                .collect();
            self.open_ephemerals(vars, &planned, true).await?;
        }
        self.close_ephemerals().await?;
        self.data = saved;
        changes.sort_by(|a, b| a.address.cmp(&b.address));
        Ok((changes, refreshed, data))
    }

    fn record(changes: &[Change]) -> Json {
        Json::Array(
            changes
                .iter()
                .filter(|c| c.actions != ["no-op"])
                .map(|c| {
                    json!({
                        "address": c.address,
                        "actions": c.actions,
                        "before": c.prior.as_ref().map(|p| p.json.clone()).unwrap_or(Json::Null),
                        "after": c.planned.as_ref().map(|p| p.json.clone()).unwrap_or(Json::Null),
                    })
                })
                .collect(),
        )
    }

    /// `terraform plan`: the changes, nothing stored.
    pub async fn plan(&mut self, vars: &Vars) -> Result<Json> {
        let (changes, _, _) = self.plan_changes(vars, false).await?;
        Ok(Self::record(&changes))
    }

    /// `terraform plan -out` then `terraform apply` of that plan (or `-destroy`).
    pub async fn apply(&mut self, vars: &Vars, destroy: bool) -> Result<Json> {
        let (changes, refreshed, data) = self.plan_changes(vars, destroy).await?;
        let record = Self::record(&changes);
        self.state = stored(refreshed);
        self.data = data;
        if !destroy {
            self.open_ephemerals(vars, &BTreeMap::new(), false).await?;
        }
        for change in changes {
            if change.actions.contains(&"delete") {
                let prior = change
                    .prior
                    .clone()
                    .ok_or_else(|| anyhow!("delete without prior"))?;
                let resp = self
                    .rpc
                    .apply_resource_change(pb::apply_resource_change::Request {
                        type_name: change.type_name.clone(),
                        prior_state: dynamic(prior.msgpack),
                        planned_state: dynamic(wire::null()),
                        config: dynamic(wire::null()),
                        planned_private: prior.private,
                        provider_meta: None,
                    })
                    .await?;
                check(&format!("destroying {}", change.address), &resp.diagnostics)?;
                self.state.remove(&change.address);
            }
            let (Some(planned), true) = (
                change.planned.clone(),
                change
                    .actions
                    .iter()
                    .any(|a| *a == "create" || *a == "update"),
            ) else {
                continue;
            };
            let prior = if change.actions == ["update"] {
                change
                    .prior
                    .clone()
                    .map(|p| p.msgpack)
                    .unwrap_or_else(wire::null)
            } else {
                wire::null()
            };
            let resp = self
                .rpc
                .apply_resource_change(pb::apply_resource_change::Request {
                    type_name: change.type_name.clone(),
                    prior_state: dynamic(prior),
                    planned_state: dynamic(planned.msgpack),
                    config: dynamic(change.config.clone()),
                    planned_private: planned.private,
                    provider_meta: None,
                })
                .await?;
            check(&format!("applying {}", change.address), &resp.diagnostics)?;
            let new = wire::decode(&bytes(&resp.new_state))?;
            consistent(&change.address, &planned.json, &new)?;
            self.state.insert(
                change.address.clone(),
                Instance {
                    type_name: change.type_name.clone(),
                    json: new,
                    private: resp.private,
                },
            );
        }
        if !destroy {
            self.open_ephemerals(vars, &BTreeMap::new(), true).await?;
        }
        self.close_ephemerals().await?;
        self.update_outputs(vars, destroy)?;
        Ok(record)
    }

    fn update_outputs(&mut self, vars: &Vars, destroy: bool) -> Result<()> {
        self.outputs = Map::new();
        if destroy {
            return Ok(());
        }
        if let Some(outputs) = self.module.get("output").and_then(Json::as_object) {
            for (name, body) in outputs.clone() {
                let value = body.get("value").cloned().unwrap_or(Json::Null);
                self.outputs
                    .insert(name, self.eval(&value, vars, &BTreeMap::new())?);
            }
        }
        Ok(())
    }

    /// `terraform apply -refresh-only`.
    pub async fn refresh(&mut self, vars: &Vars) -> Result<()> {
        self.configure().await?;
        let refreshed = self.refreshed().await?;
        self.state = stored(refreshed);
        self.data = self.read_data(vars).await?;
        // Terraform opens and closes the ephemeral resources in the refresh-only plan and
        // again in its apply.
        for _phase in ["plan", "apply"] {
            self.open_ephemerals(vars, &BTreeMap::new(), false).await?;
            self.open_ephemerals(vars, &BTreeMap::new(), true).await?;
            self.close_ephemerals().await?;
        }
        self.update_outputs(vars, false)
    }

    /// `terraform import ADDRESS ID`.
    pub async fn import(&mut self, address: &str, id: &str) -> Result<()> {
        self.configure().await?;
        let type_name = address
            .split('.')
            .next()
            .ok_or_else(|| anyhow!("bad address {address}"))?
            .to_owned();
        if self.state.contains_key(address) {
            bail!("Resource already managed by Terraform: {address}");
        }
        let resp = self
            .rpc
            .import_resource_state(pb::import_resource_state::Request {
                type_name: type_name.clone(),
                id: id.to_owned(),
                client_capabilities: None,
            })
            .await?;
        check(&format!("importing {address}"), &resp.diagnostics)?;
        let [imported] = resp.imported_resources.as_slice() else {
            bail!(
                "importing {address}: {} objects",
                resp.imported_resources.len()
            );
        };
        let read = self
            .rpc
            .read_resource(pb::read_resource::Request {
                type_name: imported.type_name.clone(),
                current_state: imported.state.clone(),
                private: imported.private.clone(),
                provider_meta: None,
                client_capabilities: None,
            })
            .await?;
        check(&format!("reading {address}"), &read.diagnostics)?;
        let json = wire::decode(&bytes(&read.new_state))?;
        if json.is_null() {
            bail!("Cannot import non-existent remote object {address} ({id})");
        }
        self.state.insert(
            address.to_owned(),
            Instance {
                type_name,
                json,
                private: read.private,
            },
        );
        Ok(())
    }

    pub fn state_rm(&mut self, address: &str) -> Result<()> {
        self.state
            .remove(address)
            .map(|_| ())
            .ok_or_else(|| anyhow!("no resource {address} in state"))
    }
}

/// Whether a configuration value refers to a managed resource (anything but `var.`, `data.`
/// and `ephemeral.`).
pub fn refers_to_resources(value: &Json) -> bool {
    match value {
        Json::String(s) => s.split("${").skip(1).any(|reference| {
            !["var.", "data.", "ephemeral."]
                .iter()
                .any(|root| reference.trim_start().starts_with(root))
        }),
        Json::Array(items) => items.iter().any(refers_to_resources),
        Json::Object(map) => map.values().any(refers_to_resources),
        _ => false,
    }
}

/// Refreshed objects as Terraform stores them.
fn stored(refreshed: BTreeMap<String, Object>) -> BTreeMap<String, Instance> {
    refreshed
        .into_iter()
        .map(|(address, object)| {
            let instance = Instance {
                type_name: object.type_name,
                json: object.json,
                private: object.private,
            };
            (address, instance)
        })
        .collect()
}

/// Terraform's check after apply: every value the plan knew is unchanged, and nothing is left
/// unknown.
pub fn consistent(address: &str, planned: &Json, new: &Json) -> Result<()> {
    fn walk(path: &str, planned: &Json, new: &Json) -> Result<()> {
        if wire::has_unknown(new) {
            bail!("{path} is still unknown after apply");
        }
        match (planned, new) {
            (Json::String(s), _) if s == UNKNOWN => Ok(()),
            (Json::Object(p), Json::Object(n)) => {
                for (k, v) in p {
                    walk(&format!("{path}.{k}"), v, n.get(k).unwrap_or(&Json::Null))?;
                }
                Ok(())
            }
            (Json::Array(p), Json::Array(n)) if p.len() == n.len() => {
                for (i, (a, b)) in p.iter().zip(n).enumerate() {
                    walk(&format!("{path}[{i}]"), a, b)?;
                }
                Ok(())
            }
            (p, n) if p == n => Ok(()),
            // The values are left out: one of them may be a secret.
            _ => bail!(
                "Provider produced inconsistent result after apply: {path} differs from the plan"
            ),
        }
    }
    walk(address, planned, new)
}
