//! The service under test, over protocol 6 or protocol 5, in the test's own values.

use std::sync::Arc;

use prost::Message;
use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use tonic::Request;

use crate::schema::{BlockS, block6};
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

pub fn path6(p: &v6::AttributePath) -> Vec<Step> {
    diag6(&v6::Diagnostic {
        attribute: Some(p.clone()),
        ..Default::default()
    })
    .path
}

/// Re-reads a message as its twin of the other protocol version (same field numbers): the
/// test speaks protocol 6 and reaches a protocol-5 service through its twin messages.
fn recode<A: Message, B: Message + Default>(a: &A) -> B {
    B::decode(a.encode_to_vec().as_slice()).expect("protocol 5 and 6 messages are twins")
}

/// Calls the RPC `$m6` of a protocol-6 service, or `$m5` of a protocol-5 one with the
/// request and reply re-read as their twins; panics (the test fails) on a transport error.
macro_rules! call {
    ($front:expr, $m6:ident, $m5:ident, $req:expr) => {{
        let req = $req;
        match $front {
            Front::V6(s) => s
                .$m6(Request::new(req))
                .await
                .expect(stringify!($m6))
                .into_inner(),
            Front::V5(s) => recode(
                &s.$m5(Request::new(recode(&req)))
                    .await
                    .expect(stringify!($m5))
                    .into_inner(),
            ),
        }
    }};
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
        let r: v6::get_provider_schema::Response =
            call!(self, get_provider_schema, get_schema, Default::default());
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

    pub async fn configure(&self, config: &Tv) -> Vec<Diag> {
        let req = v6::configure_provider::Request {
            terraform_version: "1.11.4".into(),
            config: dv6(config),
            ..Default::default()
        };
        let r: v6::configure_provider::Response = call!(self, configure_provider, configure, req);
        r.diagnostics.iter().map(diag6).collect()
    }

    pub async fn validate(&self, type_name: &str, config: &Tv) -> Vec<Diag> {
        let req = v6::validate_resource_config::Request {
            type_name: type_name.into(),
            config: dv6(config),
            ..Default::default()
        };
        let r: v6::validate_resource_config::Response = call!(
            self,
            validate_resource_config,
            validate_resource_type_config,
            req
        );
        r.diagnostics.iter().map(diag6).collect()
    }

    /// UpgradeResourceState of a state as the state file stores it (JSON, schema version 0).
    pub async fn upgrade(&self, type_name: &str, json: &[u8]) -> (Tv, Vec<Diag>) {
        let req = v6::upgrade_resource_state::Request {
            type_name: type_name.into(),
            version: 0,
            raw_state: Some(v6::RawState {
                json: json.to_vec(),
                ..Default::default()
            }),
        };
        let r: v6::upgrade_resource_state::Response =
            call!(self, upgrade_resource_state, upgrade_resource_state, req);
        (
            returned(r.upgraded_state.map(|v| v.msgpack), "upgraded_state"),
            r.diagnostics.iter().map(diag6).collect(),
        )
    }

    pub async fn read(&self, type_name: &str, state: &Tv) -> (Tv, Vec<Diag>) {
        let req = v6::read_resource::Request {
            type_name: type_name.into(),
            current_state: dv6(state),
            ..Default::default()
        };
        let r: v6::read_resource::Response = call!(self, read_resource, read_resource, req);
        (
            returned(r.new_state.map(|v| v.msgpack), "new_state"),
            r.diagnostics.iter().map(diag6).collect(),
        )
    }

    pub async fn plan(&self, type_name: &str, prior: &Tv, proposed: &Tv, config: &Tv) -> Planned {
        let req = v6::plan_resource_change::Request {
            type_name: type_name.into(),
            prior_state: dv6(prior),
            proposed_new_state: dv6(proposed),
            config: dv6(config),
            ..Default::default()
        };
        let r: v6::plan_resource_change::Response =
            call!(self, plan_resource_change, plan_resource_change, req);
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

    pub async fn apply(
        &self,
        type_name: &str,
        prior: &Tv,
        planned: &Tv,
        config: &Tv,
    ) -> (Tv, Vec<Diag>) {
        let req = v6::apply_resource_change::Request {
            type_name: type_name.into(),
            prior_state: dv6(prior),
            planned_state: dv6(planned),
            config: dv6(config),
            ..Default::default()
        };
        let r: v6::apply_resource_change::Response =
            call!(self, apply_resource_change, apply_resource_change, req);
        (
            returned(r.new_state.map(|v| v.msgpack), "new_state"),
            r.diagnostics.iter().map(diag6).collect(),
        )
    }
}
