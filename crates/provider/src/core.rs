//! One provider, protocol-neutral: what a provider binary implements ([`Provider`]) and the
//! protocol-6 service over it ([`Service`]). Protocol 5 reuses the same service (see `v5`).

use std::sync::Arc;

use model::diag::{Diagnostic, PathStep, Severity};
use model::plan::Plan;
use model::schema::TypeSchema;
use model::value::Value;
use tonic::{Request, Response, Status};

use crate::codec::{self, CodecError};
use crate::interrupt::{self, Interrupted};
use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider as ProviderRpc;
use crate::schema::to_proto;

/// The result of an operation that yields an object (or `None`: gone, or destroyed).
pub type Outcome = (Option<Value>, Vec<Diagnostic>);

/// What an ephemeral resource's Open produced: the result (`None` when it failed), the private
/// bytes Terraform hands back to Close, and diagnostics. (No `Debug`: the result holds the
/// secret.)
#[derive(Default)]
pub struct Opened {
    pub result: Option<Value>,
    pub private: Vec<u8>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Opened {
    pub fn failed(diagnostics: Vec<Diagnostic>) -> Opened {
        Opened {
            result: None,
            private: Vec::new(),
            diagnostics,
        }
    }
}

/// What a provider binary implements, in the model's terms.
#[tonic::async_trait]
pub trait Provider: Send + Sync + 'static {
    fn provider_schema(&self) -> TypeSchema;
    fn resources(&self) -> Vec<TypeSchema>;
    fn data_sources(&self) -> Vec<TypeSchema>;
    /// The ephemeral resource types (Terraform 1.10 and later); none unless a provider has some.
    fn ephemeral_resources(&self) -> Vec<TypeSchema> {
        Vec::new()
    }
    /// Checks an ephemeral resource's configuration (unknown values pass).
    fn validate_ephemeral(&self, type_name: &str, _config: &Value) -> Vec<Diagnostic> {
        unknown_type(type_name, "ephemeral resource")
    }
    /// Opens an ephemeral resource from a wholly known configuration. Terraform does not call
    /// Close when Open failed, so a failed Open leaves nothing behind.
    async fn open_ephemeral(&self, type_name: &str, _config: Value) -> Opened {
        Opened::failed(unknown_type(type_name, "ephemeral resource"))
    }
    /// Closes what Open made; `private` is what that Open returned.
    async fn close_ephemeral(&self, type_name: &str, _private: &[u8]) -> Vec<Diagnostic> {
        unknown_type(type_name, "ephemeral resource")
    }
    fn validate_provider(&self, config: &Value) -> Vec<Diagnostic> {
        model::plan::validate(&self.provider_schema().block, config)
    }
    fn validate(&self, type_name: &str, config: &Value) -> Vec<Diagnostic>;
    async fn configure(&self, config: &Value) -> Vec<Diagnostic>;
    fn plan(
        &self,
        type_name: &str,
        prior: Option<&Value>,
        config: &Value,
    ) -> Result<Plan, Vec<Diagnostic>>;
    /// Checks a plan `plan` made against the remote side, such as a limit a create would hit
    /// (`prior` is `None` for a create); a provider without such checks has nothing to say.
    /// `prior_private` is the private state Terraform sent: Terraform plans a replacement
    /// twice, the second time with a null prior and the private state the first call planned.
    async fn check_plan(
        &self,
        _type_name: &str,
        _prior: Option<&Value>,
        _prior_private: &[u8],
        _plan: &Plan,
    ) -> Vec<Diagnostic> {
        Vec::new()
    }
    async fn apply(
        &self,
        type_name: &str,
        prior: Option<Value>,
        planned: Option<Value>,
        config: Value,
    ) -> Outcome;
    async fn read(&self, type_name: &str, current: Value) -> Outcome;
    async fn import(&self, type_name: &str, id: &str) -> Outcome;
    async fn read_data(&self, type_name: &str, config: Value) -> Outcome;

    /// [`Provider::read`] with the resource's private state (opaque bytes Terraform keeps
    /// beside the object); returns the private state to keep. By default it is kept as is.
    async fn read_private(
        &self,
        type_name: &str,
        current: Value,
        private: Vec<u8>,
    ) -> (Outcome, Vec<u8>) {
        (self.read(type_name, current).await, private)
    }
    /// [`Provider::apply`] with the planned private state; returns the private state to keep.
    async fn apply_private(
        &self,
        type_name: &str,
        prior: Option<Value>,
        planned: Option<Value>,
        config: Value,
        private: Vec<u8>,
    ) -> (Outcome, Vec<u8>) {
        (self.apply(type_name, prior, planned, config).await, private)
    }
    /// [`Provider::import`] with the private state of the imported object.
    async fn import_private(&self, type_name: &str, id: &str) -> (Outcome, Vec<u8>) {
        (self.import(type_name, id).await, Vec::new())
    }
    /// Warnings that go with a plan (why a replacement happens, for example).
    fn plan_warnings(
        &self,
        _type_name: &str,
        _prior: Option<&Value>,
        _plan: &Plan,
    ) -> Vec<Diagnostic> {
        Vec::new()
    }
}

/// The gRPC service of one provider.
pub struct Service<P> {
    provider: Arc<P>,
    /// Fired by `StopProvider` (see `interrupt`).
    stop: interrupt::Stop,
}

impl<P: Provider> Service<P> {
    pub fn new(provider: Arc<P>) -> Service<P> {
        Service {
            provider,
            stop: interrupt::Stop::default(),
        }
    }

    /// Runs the provider's side of the RPC `rpc` under the stop signal; a read or a wait gives
    /// up at once when interrupted, a change gets `interrupt::BACKSTOP` to report what it did.
    async fn interruptible<F: std::future::Future>(
        &self,
        rpc: &'static str,
        grace: std::time::Duration,
        work: F,
    ) -> Result<F::Output, Interrupted> {
        interrupt::run(self.stop.call(), rpc, grace, work).await
    }

    fn resource_schema(&self, type_name: &str) -> Result<TypeSchema, Vec<pb::Diagnostic>> {
        self.provider
            .resources()
            .into_iter()
            .find(|s| s.name == type_name)
            .ok_or_else(|| diagnostics(unknown_type(type_name, "resource")))
    }

    fn data_schema(&self, type_name: &str) -> Result<TypeSchema, Vec<pb::Diagnostic>> {
        self.provider
            .data_sources()
            .into_iter()
            .find(|s| s.name == type_name)
            .ok_or_else(|| diagnostics(unknown_type(type_name, "data source")))
    }
}

/// The ephemeral-resource RPCs, apart from the generated trait so that each stays short.
impl<P: Provider> Service<P> {
    fn ephemeral_schema(&self, type_name: &str) -> Result<TypeSchema, Vec<pb::Diagnostic>> {
        self.provider
            .ephemeral_resources()
            .into_iter()
            .find(|s| s.name == type_name)
            .ok_or_else(|| diagnostics(unknown_type(type_name, "ephemeral resource")))
    }

    fn ephemeral_metadata(&self) -> Vec<pb::get_metadata::EphemeralMetadata> {
        self.provider
            .ephemeral_resources()
            .iter()
            .map(|s| pb::get_metadata::EphemeralMetadata {
                type_name: s.name.to_owned(),
            })
            .collect()
    }

    fn ephemeral_schemas(&self) -> std::collections::HashMap<String, pb::Schema> {
        self.provider
            .ephemeral_resources()
            .iter()
            .map(|s| (s.name.to_owned(), to_proto(s)))
            .collect()
    }

    async fn validate_ephemeral(
        &self,
        req: pb::validate_ephemeral_resource_config::Request,
    ) -> pb::validate_ephemeral_resource_config::Response {
        tracing::debug!(rpc = "ValidateEphemeralResourceConfig", type_name = %req.type_name, "plugin RPC");
        let diagnostics = match self
            .ephemeral_schema(&req.type_name)
            .and_then(|s| decode(&s, req.config.as_ref(), "configuration"))
        {
            Ok(config) => diagnostics(self.provider.validate_ephemeral(&req.type_name, &config)),
            Err(d) => d,
        };
        pb::validate_ephemeral_resource_config::Response { diagnostics }
    }

    async fn open_ephemeral(
        &self,
        req: pb::open_ephemeral_resource::Request,
    ) -> pb::open_ephemeral_resource::Response {
        tracing::debug!(rpc = "OpenEphemeralResource", type_name = %req.type_name, "plugin RPC");
        let failed = |diagnostics| pb::open_ephemeral_resource::Response {
            diagnostics,
            ..Default::default()
        };
        let (schema, config) = match self
            .ephemeral_schema(&req.type_name)
            .and_then(|s| Ok((decode(&s, req.config.as_ref(), "configuration")?, s)))
        {
            Ok((config, schema)) => (schema, config),
            Err(d) => return failed(d),
        };
        if config.contains_unknown() {
            // Terraform itself waits for a known configuration and opens in the apply; a
            // client that can take a deferral gets one, with the result as far as it is known.
            let deferral_allowed = req.client_capabilities.is_some_and(|c| c.deferral_allowed);
            if deferral_allowed {
                let result = model::plan::plan(&schema.block, None, &config).planned;
                return pb::open_ephemeral_resource::Response {
                    result: Some(dynamic(&result)),
                    deferred: Some(pb::Deferred {
                        reason: pb::deferred::Reason::ResourceConfigUnknown as i32,
                    }),
                    ..Default::default()
                };
            }
            return failed(diagnostics(unknown_config(&schema, &config)));
        }
        let opened = self.provider.open_ephemeral(&req.type_name, config).await;
        match opened.result {
            Some(result) if !model::diag::has_errors(&opened.diagnostics) => {
                pb::open_ephemeral_resource::Response {
                    diagnostics: diagnostics(opened.diagnostics),
                    renew_at: None,
                    result: Some(dynamic(&result)),
                    private: Some(opened.private),
                    deferred: None,
                }
            }
            _ => failed(diagnostics(opened.diagnostics)),
        }
    }

    async fn close_ephemeral(
        &self,
        req: pb::close_ephemeral_resource::Request,
    ) -> pb::close_ephemeral_resource::Response {
        tracing::debug!(rpc = "CloseEphemeralResource", type_name = %req.type_name, "plugin RPC");
        let diagnostics = match self.ephemeral_schema(&req.type_name) {
            Ok(_) => diagnostics(
                self.provider
                    .close_ephemeral(&req.type_name, req.private.as_deref().unwrap_or_default())
                    .await,
            ),
            Err(d) => d,
        };
        pb::close_ephemeral_resource::Response { diagnostics }
    }
}

/// The error for an Open whose configuration is not wholly known, naming the first such
/// attribute.
fn unknown_config(schema: &TypeSchema, config: &Value) -> Vec<Diagnostic> {
    let name = schema
        .block
        .attributes
        .iter()
        .find(|a| config.get(a.name).contains_unknown())
        .map(|a| a.name)
        .unwrap_or_default();
    vec![Diagnostic::error(
        model::diag::AttrPath::attr(name),
        "Configuration not known yet",
        format!(
            "`{name}` depends on a value known only after apply, so the {} cannot be opened now; Terraform opens it during apply.",
            schema.name
        ),
    )]
}

/// The error of a call that `StopProvider` interrupted; `detail` says what is known.
pub fn interrupted(detail: impl Into<String>) -> Vec<Diagnostic> {
    vec![Diagnostic::error(
        model::diag::AttrPath::default(),
        "Interrupted",
        detail,
    )]
}

/// The error for a type this provider does not have (`kind`: "resource" or "data source").
pub fn unknown_type(type_name: &str, kind: &str) -> Vec<Diagnostic> {
    vec![Diagnostic::error(
        model::diag::AttrPath::default(),
        format!("Unknown {kind} type"),
        format!("This provider has no {kind} {type_name:?}."),
    )]
}

fn error(summary: String, detail: String) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: pb::diagnostic::Severity::Error as i32,
        summary,
        detail,
        attribute: None,
    }
}

pub fn diagnostics(diags: Vec<Diagnostic>) -> Vec<pb::Diagnostic> {
    diags
        .into_iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error,
                Severity::Warning => pb::diagnostic::Severity::Warning,
            } as i32,
            summary: d.summary,
            detail: d.detail,
            attribute: (!d.path.0.is_empty()).then(|| path(&d.path.0)),
        })
        .collect()
}

fn path(steps: &[PathStep]) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: steps
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attr(name) => Selector::AttributeName(name.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i as i64),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                }),
            })
            .collect(),
    }
}

fn codec_error(what: &str, err: CodecError) -> Vec<pb::Diagnostic> {
    let attribute = match &err {
        CodecError::Shape { path, .. } => codec_path(path),
        _ => None,
    };
    vec![pb::Diagnostic {
        attribute,
        ..error(format!("Invalid {what}"), err.to_string())
    }]
}

/// The attribute path of a codec error, from the codec's text form (`a.b[0]["k"]`), so that
/// Terraform points at the attribute; `None` for the root or a key it cannot read back.
fn codec_path(text: &str) -> Option<pb::AttributePath> {
    use pb::attribute_path::Step;
    use pb::attribute_path::step::Selector;
    let mut steps = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let (name, tail) = rest.split_at(end);
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        steps.push(Step {
            selector: Some(Selector::AttributeName(name.to_owned())),
        });
        rest = tail;
        while let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']')?;
            let (key, tail) = inner.split_at(close);
            let selector = match key.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
                Some(k) if !k.contains(['\\', '"']) => Selector::ElementKeyString(k.to_owned()),
                Some(_) => return None,
                None => Selector::ElementKeyInt(key.parse().ok()?),
            };
            steps.push(Step {
                selector: Some(selector),
            });
            rest = &tail[1..];
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    (!steps.is_empty()).then_some(pb::AttributePath { steps })
}

/// Decodes a DynamicValue; an absent one is null.
fn decode(
    schema: &TypeSchema,
    value: Option<&pb::DynamicValue>,
    what: &str,
) -> Result<Value, Vec<pb::Diagnostic>> {
    match value {
        None => Ok(Value::Null),
        Some(v) if !v.msgpack.is_empty() => {
            codec::decode_block(&schema.block, &v.msgpack).map_err(|e| codec_error(what, e))
        }
        Some(v) if !v.json.is_empty() => {
            codec::decode_block_json(&schema.block, &v.json).map_err(|e| codec_error(what, e))
        }
        Some(_) => Ok(Value::Null),
    }
}

fn dynamic(value: &Value) -> pb::DynamicValue {
    pb::DynamicValue {
        msgpack: codec::encode(value),
        json: Vec::new(),
    }
}

fn optional(value: Value) -> Option<Value> {
    (!value.is_null()).then_some(value)
}

#[tonic::async_trait]
impl<P: Provider> ProviderRpc for Service<P> {
    async fn get_metadata(
        &self,
        _: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        Ok(Response::new(pb::get_metadata::Response {
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
            }),
            diagnostics: Vec::new(),
            data_sources: self
                .provider
                .data_sources()
                .iter()
                .map(|s| pb::get_metadata::DataSourceMetadata {
                    type_name: s.name.to_owned(),
                })
                .collect(),
            resources: self
                .provider
                .resources()
                .iter()
                .map(|s| pb::get_metadata::ResourceMetadata {
                    type_name: s.name.to_owned(),
                })
                .collect(),
            ephemeral_resources: self.ephemeral_metadata(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(to_proto(&self.provider.provider_schema())),
            resource_schemas: self
                .provider
                .resources()
                .iter()
                .map(|s| (s.name.to_owned(), to_proto(s)))
                .collect(),
            data_source_schemas: self
                .provider
                .data_sources()
                .iter()
                .map(|s| (s.name.to_owned(), to_proto(s)))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
            }),
            ephemeral_resource_schemas: self.ephemeral_schemas(),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let req = req.into_inner();
        let diagnostics = match decode(
            &self.provider.provider_schema(),
            req.config.as_ref(),
            "provider configuration",
        ) {
            Ok(config) => diagnostics(self.provider.validate_provider(&config)),
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics,
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let diagnostics = match self
            .resource_schema(&req.type_name)
            .and_then(|s| decode(&s, req.config.as_ref(), "configuration"))
        {
            Ok(config) => diagnostics(self.provider.validate(&req.type_name, &config)),
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics,
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let diagnostics = match self
            .data_schema(&req.type_name)
            .and_then(|s| decode(&s, req.config.as_ref(), "configuration"))
        {
            Ok(config) => diagnostics(self.provider.validate(&req.type_name, &config)),
            Err(d) => d,
        };
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics,
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let result = self.resource_schema(&req.type_name).and_then(|schema| {
            if req.version > schema.version {
                return Err(vec![error(
                    "State written by a newer provider".into(),
                    format!("The state of this {} has schema version {}, newer than this provider's {}; upgrade the provider.", req.type_name, req.version, schema.version),
                )]);
            }
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                return Err(vec![error("Unsupported state format".into(), "Only JSON state (Terraform 0.12 and later) can be upgraded.".into())]);
            }
            codec::decode_block_json(&schema.block, &raw.json).map_err(|e| codec_error("stored state", e))
        });
        Ok(Response::new(match result {
            Ok(value) => pb::upgrade_resource_state::Response {
                upgraded_state: Some(dynamic(&value)),
                diagnostics: Vec::new(),
            },
            Err(diagnostics) => pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics,
            },
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let req = req.into_inner();
        let diagnostics = match decode(
            &self.provider.provider_schema(),
            req.config.as_ref(),
            "provider configuration",
        ) {
            Ok(config) => diagnostics(
                self.interruptible(
                    "ConfigureProvider",
                    std::time::Duration::ZERO,
                    self.provider.configure(&config),
                )
                .await
                .unwrap_or_else(|Interrupted| {
                    interrupted(
                        "Terraform was interrupted while the provider was being configured.",
                    )
                }),
            ),
            Err(d) => d,
        };
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics,
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let result = self
            .resource_schema(&req.type_name)
            .and_then(|s| Ok((decode(&s, req.current_state.as_ref(), "state")?, s)));
        let (new_state, diags, private) = match result {
            Ok((current, _)) if current.is_null() => {
                (Some(Value::Null), Vec::new(), req.private.clone())
            }
            Ok((current, _)) => {
                let ((state, diags), private) = self
                    .interruptible(
                        "ReadResource",
                        std::time::Duration::ZERO,
                        self.provider
                            .read_private(&req.type_name, current.clone(), req.private.clone()),
                    )
                    .await
                    .unwrap_or_else(|Interrupted| {
                        let detail = "Terraform was interrupted while the provider was reading this object; it is kept as it was.";
                        ((Some(current), interrupted(detail)), req.private.clone())
                    });
                (
                    Some(state.unwrap_or(Value::Null)),
                    diagnostics(diags),
                    private,
                )
            }
            Err(d) => (None, d, req.private.clone()),
        };
        Ok(Response::new(pb::read_resource::Response {
            new_state: new_state.as_ref().map(dynamic),
            diagnostics: diags,
            private,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let decoded = self.resource_schema(&req.type_name).and_then(|s| {
            Ok((
                decode(&s, req.prior_state.as_ref(), "prior state")?,
                decode(&s, req.proposed_new_state.as_ref(), "proposed state")?,
                decode(&s, req.config.as_ref(), "configuration")?,
            ))
        });
        let response = match decoded {
            Err(diagnostics) => pb::plan_resource_change::Response {
                diagnostics,
                ..Default::default()
            },
            // Destroy: nothing to plan.
            Ok((_, proposed, _)) if proposed.is_null() => pb::plan_resource_change::Response {
                planned_state: Some(dynamic(&Value::Null)),
                planned_private: req.prior_private,
                ..Default::default()
            },
            Ok((prior, _, config)) => {
                let prior = optional(prior);
                match self.provider.plan(&req.type_name, prior.as_ref(), &config) {
                    Ok(plan) => {
                        let mut diags =
                            self.provider
                                .plan_warnings(&req.type_name, prior.as_ref(), &plan);
                        let checked = self
                            .interruptible(
                                "PlanResourceChange",
                                std::time::Duration::ZERO,
                                self.provider.check_plan(
                                    &req.type_name,
                                    prior.as_ref(),
                                    &req.prior_private,
                                    &plan,
                                ),
                            )
                            .await
                            .unwrap_or_else(|Interrupted| {
                                interrupted("Terraform was interrupted while the provider was checking this plan.")
                            });
                        diags.extend(checked);
                        pb::plan_resource_change::Response {
                            planned_state: Some(dynamic(&plan.planned)),
                            requires_replace: plan
                                .requires_replace
                                .iter()
                                .map(|p| path(&p.0))
                                .collect(),
                            planned_private: req.prior_private,
                            diagnostics: diagnostics(diags),
                            legacy_type_system: false,
                        }
                    }
                    Err(diags) => pb::plan_resource_change::Response {
                        diagnostics: diagnostics(diags),
                        ..Default::default()
                    },
                }
            }
        };
        Ok(Response::new(response))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let decoded = self.resource_schema(&req.type_name).and_then(|s| {
            Ok((
                decode(&s, req.prior_state.as_ref(), "prior state")?,
                decode(&s, req.planned_state.as_ref(), "planned state")?,
                decode(&s, req.config.as_ref(), "configuration")?,
            ))
        });
        let response = match decoded {
            Err(diagnostics) => pb::apply_resource_change::Response {
                diagnostics,
                ..Default::default()
            },
            Ok((prior, planned, config)) => {
                let prior_for_error = prior.clone();
                // A resource reports what an interrupt left behind; one that does not look for
                // interrupts is given up on after the backstop, with the prior state kept.
                let ((state, diags), private) = self
                    .interruptible(
                        "ApplyResourceChange",
                        interrupt::BACKSTOP,
                        self.provider.apply_private(
                            &req.type_name,
                            optional(prior),
                            optional(planned.clone()),
                            config,
                            req.planned_private.clone(),
                        ),
                    )
                    .await
                    .unwrap_or_else(|Interrupted| {
                        let detail = "Terraform was interrupted while the provider was applying this change; it may have been partly made. The next plan reads what exists.";
                        ((None, interrupted(detail)), req.planned_private.clone())
                    });
                let failed = model::diag::has_errors(&diags);
                // On failure Terraform keeps the state returned: the prior object, unless the
                // provider says what exists now.
                let new_state = match (state, failed) {
                    (Some(s), _) => s,
                    (None, true) => prior_for_error,
                    (None, false) => Value::Null,
                };
                pb::apply_resource_change::Response {
                    new_state: Some(dynamic(&new_state)),
                    private,
                    diagnostics: diagnostics(diags),
                    legacy_type_system: false,
                }
            }
        };
        Ok(Response::new(response))
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        if let Err(diagnostics) = self.resource_schema(&req.type_name) {
            return Ok(Response::new(pb::import_resource_state::Response {
                imported_resources: Vec::new(),
                diagnostics,
            }));
        }
        let ((state, diags), private) = self
            .interruptible(
                "ImportResourceState",
                std::time::Duration::ZERO,
                self.provider.import_private(&req.type_name, &req.id),
            )
            .await
            .unwrap_or_else(|Interrupted| {
                (
                    (
                        None,
                        interrupted("Terraform was interrupted during the import."),
                    ),
                    Vec::new(),
                )
            });
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: state
                .map(|s| pb::import_resource_state::ImportedResource {
                    type_name: req.type_name.clone(),
                    state: Some(dynamic(&s)),
                    private,
                })
                .into_iter()
                .collect(),
            diagnostics: diagnostics(diags),
        }))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        Ok(Response::new(
            self.validate_ephemeral(req.into_inner()).await,
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        Ok(Response::new(self.open_ephemeral(req.into_inner()).await))
    }

    /// Nothing here needs renewing (Open never sets `renew_at`); the private data stays as
    /// Open made it, which is also what Terraform passes to Close.
    async fn renew_ephemeral_resource(
        &self,
        req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        tracing::debug!(rpc = "RenewEphemeralResource", type_name = %req.type_name, "plugin RPC");
        let diagnostics = self
            .ephemeral_schema(&req.type_name)
            .err()
            .unwrap_or_default();
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics,
            renew_at: None,
            private: req.private,
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        Ok(Response::new(self.close_ephemeral(req.into_inner()).await))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let response = match self
            .data_schema(&req.type_name)
            .and_then(|s| decode(&s, req.config.as_ref(), "configuration"))
        {
            Err(diagnostics) => pb::read_data_source::Response {
                state: None,
                diagnostics,
            },
            Ok(config) => {
                let (state, diags) = self
                    .interruptible(
                        "ReadDataSource",
                        std::time::Duration::ZERO,
                        self.provider.read_data(&req.type_name, config),
                    )
                    .await
                    .unwrap_or_else(|Interrupted| {
                        (None, interrupted("Terraform was interrupted while the provider was reading this data source."))
                    });
                pb::read_data_source::Response {
                    state: state.as_ref().map(dynamic),
                    diagnostics: diagnostics(diags),
                }
            }
        };
        Ok(Response::new(response))
    }

    /// Interrupts every call in flight (Terraform sends this on Ctrl-C, then waits for them).
    async fn stop_provider(
        &self,
        _: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::warn!("interrupted: stopping the calls in flight");
        self.stop.stop();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

#[cfg(test)]
mod codec_path_tests {
    use super::codec_path;
    use crate::proto::tfplugin6::attribute_path::step::Selector;

    fn steps(text: &str) -> Option<Vec<Selector>> {
        codec_path(text).map(|p| p.steps.into_iter().filter_map(|s| s.selector).collect())
    }

    #[test]
    fn codec_errors_point_at_their_attribute() {
        assert_eq!(
            steps("retry_duration_seconds"),
            Some(vec![Selector::AttributeName(
                "retry_duration_seconds".into()
            )])
        );
        assert_eq!(
            steps("filter[1].values[0]"),
            Some(vec![
                Selector::AttributeName("filter".into()),
                Selector::ElementKeyInt(1),
                Selector::AttributeName("values".into()),
                Selector::ElementKeyInt(0),
            ])
        );
        assert_eq!(
            steps("tags[\"k\"]"),
            Some(vec![
                Selector::AttributeName("tags".into()),
                Selector::ElementKeyString("k".into()),
            ])
        );
        assert_eq!(steps("(root)"), None);
        assert_eq!(steps("tags[\"a\\\"b\"]"), None);
        assert_eq!(steps("a[x]"), None);
    }
}
