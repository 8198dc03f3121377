//! Protocol 5 over the protocol-6 service.
//!
//! For every RPC this provider serves, the protocol-5 messages carry the same fields under the
//! same numbers as their protocol-6 counterparts (only names differ, and protocol 5's
//! `PrepareProviderConfig` has an optional `prepared_config` we leave unset). So each request is
//! re-read as its protocol-6 twin and each response the other way round.

use std::sync::Arc;

use prost::Message;
use tonic::{Request, Response, Status};

use crate::core::{Provider, Service};
use crate::proto::tfplugin5 as v5;
use crate::proto::tfplugin6 as v6;
use crate::proto::tfplugin6::provider_server::Provider as V6;

pub struct V5<P> {
    inner: Arc<Service<P>>,
}

impl<P> V5<P> {
    pub fn new(inner: Arc<Service<P>>) -> V5<P> {
        V5 { inner }
    }
}

/// Re-reads a message as another with the same field numbers.
fn transcode<A: Message, B: Message + Default>(a: &A) -> Result<B, Status> {
    B::decode(a.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("protocol 5/6 message mismatch: {e}")))
}

/// Writes the whole protocol-5 impl, one forwarding method per RPC. (The impl is generated as a
/// whole so that `async_trait` sees the expanded methods.)
macro_rules! forward_all {
    ($(($name:ident, $req5:ty, $resp5:ty, $req6:ty, $call:ident)),* $(,)?) => {
        #[tonic::async_trait]
        impl<P: Provider> v5::provider_server::Provider for V5<P> {
            $(
                async fn $name(&self, req: Request<$req5>) -> Result<Response<$resp5>, Status> {
                    let req6: $req6 = transcode(req.get_ref())?;
                    let resp6 = self.inner.$call(Request::new(req6)).await?;
                    Ok(Response::new(transcode(resp6.get_ref())?))
                }
            )*
        }
    };
}

forward_all!(
    (
        get_metadata,
        v5::get_metadata::Request,
        v5::get_metadata::Response,
        v6::get_metadata::Request,
        get_metadata
    ),
    (
        get_schema,
        v5::get_provider_schema::Request,
        v5::get_provider_schema::Response,
        v6::get_provider_schema::Request,
        get_provider_schema
    ),
    (
        prepare_provider_config,
        v5::prepare_provider_config::Request,
        v5::prepare_provider_config::Response,
        v6::validate_provider_config::Request,
        validate_provider_config
    ),
    (
        validate_resource_type_config,
        v5::validate_resource_type_config::Request,
        v5::validate_resource_type_config::Response,
        v6::validate_resource_config::Request,
        validate_resource_config
    ),
    (
        validate_data_source_config,
        v5::validate_data_source_config::Request,
        v5::validate_data_source_config::Response,
        v6::validate_data_resource_config::Request,
        validate_data_resource_config
    ),
    (
        upgrade_resource_state,
        v5::upgrade_resource_state::Request,
        v5::upgrade_resource_state::Response,
        v6::upgrade_resource_state::Request,
        upgrade_resource_state
    ),
    (
        configure,
        v5::configure::Request,
        v5::configure::Response,
        v6::configure_provider::Request,
        configure_provider
    ),
    (
        read_resource,
        v5::read_resource::Request,
        v5::read_resource::Response,
        v6::read_resource::Request,
        read_resource
    ),
    (
        plan_resource_change,
        v5::plan_resource_change::Request,
        v5::plan_resource_change::Response,
        v6::plan_resource_change::Request,
        plan_resource_change
    ),
    (
        apply_resource_change,
        v5::apply_resource_change::Request,
        v5::apply_resource_change::Response,
        v6::apply_resource_change::Request,
        apply_resource_change
    ),
    (
        import_resource_state,
        v5::import_resource_state::Request,
        v5::import_resource_state::Response,
        v6::import_resource_state::Request,
        import_resource_state
    ),
    (
        validate_ephemeral_resource_config,
        v5::validate_ephemeral_resource_config::Request,
        v5::validate_ephemeral_resource_config::Response,
        v6::validate_ephemeral_resource_config::Request,
        validate_ephemeral_resource_config
    ),
    (
        open_ephemeral_resource,
        v5::open_ephemeral_resource::Request,
        v5::open_ephemeral_resource::Response,
        v6::open_ephemeral_resource::Request,
        open_ephemeral_resource
    ),
    (
        renew_ephemeral_resource,
        v5::renew_ephemeral_resource::Request,
        v5::renew_ephemeral_resource::Response,
        v6::renew_ephemeral_resource::Request,
        renew_ephemeral_resource
    ),
    (
        close_ephemeral_resource,
        v5::close_ephemeral_resource::Request,
        v5::close_ephemeral_resource::Response,
        v6::close_ephemeral_resource::Request,
        close_ephemeral_resource
    ),
    (
        read_data_source,
        v5::read_data_source::Request,
        v5::read_data_source::Response,
        v6::read_data_source::Request,
        read_data_source
    ),
    (
        stop,
        v5::stop::Request,
        v5::stop::Response,
        v6::stop_provider::Request,
        stop_provider
    ),
);
