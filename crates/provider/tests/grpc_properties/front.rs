//! The service under test, over protocol 6 or protocol 5, in the test's own values.

use std::sync::Arc;

use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use tonic::Request;

use crate::schema::{BlockS, block5, block6};
use crate::value::{Tv, decode, encode};

/// One step of an attribute path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Attr(String),
    Int(i64),
    Key(String),
}

/// A diagnostic of either protocol.
#[derive(Debug, Clone)]
pub struct Diag {
    pub error: bool,
    pub summary: String,
    pub detail: String,
    pub path: Vec<Step>,
}

pub fn diag6(d: &v6::Diagnostic) -> Diag {
    use v6::attribute_path::step::Selector;
    Diag {
        error: d.severity == v6::diagnostic::Severity::Error as i32,
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        path: d
            .attribute
            .iter()
            .flat_map(|p| &p.steps)
            .map(
                |s| match s.selector.as_ref().expect("a path step has a selector") {
                    Selector::AttributeName(n) => Step::Attr(n.clone()),
                    Selector::ElementKeyInt(i) => Step::Int(*i),
                    Selector::ElementKeyString(k) => Step::Key(k.clone()),
                },
            )
            .collect(),
    }
}

pub fn diag5(d: &v5::Diagnostic) -> Diag {
    use v5::attribute_path::step::Selector;
    Diag {
        error: d.severity == v5::diagnostic::Severity::Error as i32,
        summary: d.summary.clone(),
        detail: d.detail.clone(),
        path: d
            .attribute
            .iter()
            .flat_map(|p| &p.steps)
            .map(
                |s| match s.selector.as_ref().expect("a path step has a selector") {
                    Selector::AttributeName(n) => Step::Attr(n.clone()),
                    Selector::ElementKeyInt(i) => Step::Int(*i),
                    Selector::ElementKeyString(k) => Step::Key(k.clone()),
                },
            )
            .collect(),
    }
}

pub fn path6(p: &v6::AttributePath) -> Vec<Step> {
    diag6(&v6::Diagnostic {
        attribute: Some(p.clone()),
        ..Default::default()
    })
    .path
}

pub fn path5(p: &v5::AttributePath) -> Vec<Step> {
    diag5(&v5::Diagnostic {
        attribute: Some(p.clone()),
        ..Default::default()
    })
    .path
}

pub type Rpc6 = dyn v6::provider_server::Provider;
pub type Rpc5 = dyn v5::provider_server::Provider;

#[derive(Clone)]
pub enum Front {
    V6(Arc<Rpc6>),
    V5(Arc<Rpc5>),
}

#[derive(Debug, Clone, Copy)]
pub enum Proto {
    V5,
    V6,
}

pub fn dv6(value: &Tv) -> Option<v6::DynamicValue> {
    Some(v6::DynamicValue {
        msgpack: encode(value),
        json: Vec::new(),
    })
}

pub fn dv5(value: &Tv) -> Option<v5::DynamicValue> {
    Some(v5::DynamicValue {
        msgpack: encode(value),
        json: Vec::new(),
    })
}

/// A DynamicValue the provider returned; a missing one is an error (Terraform needs it).
pub fn returned(msgpack: Option<Vec<u8>>, what: &str) -> Tv {
    let bytes = msgpack.unwrap_or_else(|| panic!("the provider returned no {what}"));
    assert!(!bytes.is_empty(), "the provider returned {what} as JSON");
    decode(&bytes)
}

pub struct Planned {
    pub planned: Tv,
    pub requires_replace: Vec<Vec<Step>>,
    pub diags: Vec<Diag>,
}

impl Front {
    pub fn new<P: provider::core::Provider>(provider: P, proto: Proto) -> Front {
        let service = Arc::new(provider::core::Service::new(Arc::new(provider)));
        match proto {
            Proto::V6 => Front::V6(service),
            Proto::V5 => Front::V5(Arc::new(provider::v5::V5::new(service))),
        }
    }

    /// The provider's own schema and the schema of `type_name`.
    pub async fn schemas(&self, type_name: &str) -> (BlockS, BlockS) {
        match self {
            Front::V6(s) => {
                let r = s
                    .get_provider_schema(Request::new(Default::default()))
                    .await
                    .expect("GetProviderSchema")
                    .into_inner();
                let provider = block6(
                    r.provider
                        .and_then(|p| p.block)
                        .as_ref()
                        .expect("provider schema"),
                );
                let resource = block6(
                    r.resource_schemas[type_name]
                        .block
                        .as_ref()
                        .expect("resource schema"),
                );
                (provider, resource)
            }
            Front::V5(s) => {
                let r = s
                    .get_schema(Request::new(Default::default()))
                    .await
                    .expect("GetSchema")
                    .into_inner();
                let provider = block5(
                    r.provider
                        .and_then(|p| p.block)
                        .as_ref()
                        .expect("provider schema"),
                );
                let resource = block5(
                    r.resource_schemas[type_name]
                        .block
                        .as_ref()
                        .expect("resource schema"),
                );
                (provider, resource)
            }
        }
    }

    pub async fn configure(&self, config: &Tv) -> Vec<Diag> {
        match self {
            Front::V6(s) => s
                .configure_provider(Request::new(v6::configure_provider::Request {
                    terraform_version: "1.11.4".into(),
                    config: dv6(config),
                    ..Default::default()
                }))
                .await
                .expect("ConfigureProvider")
                .into_inner()
                .diagnostics
                .iter()
                .map(diag6)
                .collect(),
            Front::V5(s) => s
                .configure(Request::new(v5::configure::Request {
                    terraform_version: "1.11.4".into(),
                    config: dv5(config),
                    ..Default::default()
                }))
                .await
                .expect("Configure")
                .into_inner()
                .diagnostics
                .iter()
                .map(diag5)
                .collect(),
        }
    }

    pub async fn validate(&self, type_name: &str, config: &Tv) -> Vec<Diag> {
        match self {
            Front::V6(s) => s
                .validate_resource_config(Request::new(v6::validate_resource_config::Request {
                    type_name: type_name.into(),
                    config: dv6(config),
                    ..Default::default()
                }))
                .await
                .expect("ValidateResourceConfig")
                .into_inner()
                .diagnostics
                .iter()
                .map(diag6)
                .collect(),
            Front::V5(s) => s
                .validate_resource_type_config(Request::new(
                    v5::validate_resource_type_config::Request {
                        type_name: type_name.into(),
                        config: dv5(config),
                        ..Default::default()
                    },
                ))
                .await
                .expect("ValidateResourceTypeConfig")
                .into_inner()
                .diagnostics
                .iter()
                .map(diag5)
                .collect(),
        }
    }

    /// UpgradeResourceState of a state as the state file stores it (JSON, schema version 0).
    pub async fn upgrade(&self, type_name: &str, json: &[u8]) -> (Tv, Vec<Diag>) {
        match self {
            Front::V6(s) => {
                let r = s
                    .upgrade_resource_state(Request::new(v6::upgrade_resource_state::Request {
                        type_name: type_name.into(),
                        version: 0,
                        raw_state: Some(v6::RawState {
                            json: json.to_vec(),
                            ..Default::default()
                        }),
                    }))
                    .await
                    .expect("UpgradeResourceState")
                    .into_inner();
                (
                    returned(r.upgraded_state.map(|v| v.msgpack), "upgraded_state"),
                    r.diagnostics.iter().map(diag6).collect(),
                )
            }
            Front::V5(s) => {
                let r = s
                    .upgrade_resource_state(Request::new(v5::upgrade_resource_state::Request {
                        type_name: type_name.into(),
                        version: 0,
                        raw_state: Some(v5::RawState {
                            json: json.to_vec(),
                            ..Default::default()
                        }),
                    }))
                    .await
                    .expect("UpgradeResourceState")
                    .into_inner();
                (
                    returned(r.upgraded_state.map(|v| v.msgpack), "upgraded_state"),
                    r.diagnostics.iter().map(diag5).collect(),
                )
            }
        }
    }

    pub async fn read(&self, type_name: &str, state: &Tv) -> (Tv, Vec<Diag>) {
        match self {
            Front::V6(s) => {
                let r = s
                    .read_resource(Request::new(v6::read_resource::Request {
                        type_name: type_name.into(),
                        current_state: dv6(state),
                        ..Default::default()
                    }))
                    .await
                    .expect("ReadResource")
                    .into_inner();
                (
                    returned(r.new_state.map(|v| v.msgpack), "new_state"),
                    r.diagnostics.iter().map(diag6).collect(),
                )
            }
            Front::V5(s) => {
                let r = s
                    .read_resource(Request::new(v5::read_resource::Request {
                        type_name: type_name.into(),
                        current_state: dv5(state),
                        ..Default::default()
                    }))
                    .await
                    .expect("ReadResource")
                    .into_inner();
                (
                    returned(r.new_state.map(|v| v.msgpack), "new_state"),
                    r.diagnostics.iter().map(diag5).collect(),
                )
            }
        }
    }

    pub async fn plan(&self, type_name: &str, prior: &Tv, proposed: &Tv, config: &Tv) -> Planned {
        match self {
            Front::V6(s) => {
                let r = s
                    .plan_resource_change(Request::new(v6::plan_resource_change::Request {
                        type_name: type_name.into(),
                        prior_state: dv6(prior),
                        proposed_new_state: dv6(proposed),
                        config: dv6(config),
                        ..Default::default()
                    }))
                    .await
                    .expect("PlanResourceChange")
                    .into_inner();
                let diags: Vec<Diag> = r.diagnostics.iter().map(diag6).collect();
                Planned {
                    planned: if diags.iter().any(|d| d.error) {
                        Tv::Null
                    } else {
                        returned(r.planned_state.map(|v| v.msgpack), "planned_state")
                    },
                    requires_replace: r.requires_replace.iter().map(path6).collect(),
                    diags,
                }
            }
            Front::V5(s) => {
                let r = s
                    .plan_resource_change(Request::new(v5::plan_resource_change::Request {
                        type_name: type_name.into(),
                        prior_state: dv5(prior),
                        proposed_new_state: dv5(proposed),
                        config: dv5(config),
                        ..Default::default()
                    }))
                    .await
                    .expect("PlanResourceChange")
                    .into_inner();
                let diags: Vec<Diag> = r.diagnostics.iter().map(diag5).collect();
                Planned {
                    planned: if diags.iter().any(|d| d.error) {
                        Tv::Null
                    } else {
                        returned(r.planned_state.map(|v| v.msgpack), "planned_state")
                    },
                    requires_replace: r.requires_replace.iter().map(path5).collect(),
                    diags,
                }
            }
        }
    }

    pub async fn apply(
        &self,
        type_name: &str,
        prior: &Tv,
        planned: &Tv,
        config: &Tv,
    ) -> (Tv, Vec<Diag>) {
        match self {
            Front::V6(s) => {
                let r = s
                    .apply_resource_change(Request::new(v6::apply_resource_change::Request {
                        type_name: type_name.into(),
                        prior_state: dv6(prior),
                        planned_state: dv6(planned),
                        config: dv6(config),
                        ..Default::default()
                    }))
                    .await
                    .expect("ApplyResourceChange")
                    .into_inner();
                (
                    returned(r.new_state.map(|v| v.msgpack), "new_state"),
                    r.diagnostics.iter().map(diag6).collect(),
                )
            }
            Front::V5(s) => {
                let r = s
                    .apply_resource_change(Request::new(v5::apply_resource_change::Request {
                        type_name: type_name.into(),
                        prior_state: dv5(prior),
                        planned_state: dv5(planned),
                        config: dv5(config),
                        ..Default::default()
                    }))
                    .await
                    .expect("ApplyResourceChange")
                    .into_inner();
                (
                    returned(r.new_state.map(|v| v.msgpack), "new_state"),
                    r.diagnostics.iter().map(diag5).collect(),
                )
            }
        }
    }
}
