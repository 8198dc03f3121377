//! The provider calls the kit's engine makes, in protocol-6 terms, and three ways to make
//! them: in-process on a service value, over gRPC protocol 6, and over gRPC protocol 5 (each
//! message re-read as its protocol-5 twin, which has the same field numbers).

use prost::Message;
use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use provider::proto::tfplugin6::provider_server::Provider as Server6;
use tonic::transport::Channel;
use tonic::{Request, Status};

fn recode<A: Message, B: Message + Default>(a: &A) -> Result<B, Status> {
    B::decode(a.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("protocol 5/6 message mismatch: {e}")))
}

/// A provider service called in this process, without a network.
pub struct InProcess<S>(pub S);

/// A provider binary's protocol-6 service.
pub struct Grpc6(pub v6::provider_client::ProviderClient<Channel>);

/// A provider binary's protocol-5 service.
pub struct Grpc5(pub v5::provider_client::ProviderClient<Channel>);

macro_rules! rpcs {
    ($($m:ident: $req:ty => $resp:ty, $m5:ident: $req5:ty;)*) => {
        #[tonic::async_trait]
        pub trait Rpc: Send {
            $(async fn $m(&mut self, req: $req) -> Result<$resp, Status>;)*
        }

        #[tonic::async_trait]
        impl<S: Server6> Rpc for InProcess<S> {
            $(async fn $m(&mut self, req: $req) -> Result<$resp, Status> {
                Ok(S::$m(&self.0, Request::new(req)).await?.into_inner())
            })*
        }

        #[tonic::async_trait]
        impl Rpc for Grpc6 {
            $(async fn $m(&mut self, req: $req) -> Result<$resp, Status> {
                Ok(self.0.$m(req).await?.into_inner())
            })*
        }

        #[tonic::async_trait]
        impl Rpc for Grpc5 {
            $(async fn $m(&mut self, req: $req) -> Result<$resp, Status> {
                let req: $req5 = recode(&req)?;
                recode(&self.0.$m5(req).await?.into_inner())
            })*
        }
    };
}

rpcs! {
    get_provider_schema: v6::get_provider_schema::Request => v6::get_provider_schema::Response,
        get_schema: v5::get_provider_schema::Request;
    validate_provider_config: v6::validate_provider_config::Request => v6::validate_provider_config::Response,
        prepare_provider_config: v5::prepare_provider_config::Request;
    validate_resource_config: v6::validate_resource_config::Request => v6::validate_resource_config::Response,
        validate_resource_type_config: v5::validate_resource_type_config::Request;
    validate_data_resource_config: v6::validate_data_resource_config::Request => v6::validate_data_resource_config::Response,
        validate_data_source_config: v5::validate_data_source_config::Request;
    configure_provider: v6::configure_provider::Request => v6::configure_provider::Response,
        configure: v5::configure::Request;
    upgrade_resource_state: v6::upgrade_resource_state::Request => v6::upgrade_resource_state::Response,
        upgrade_resource_state: v5::upgrade_resource_state::Request;
    read_resource: v6::read_resource::Request => v6::read_resource::Response,
        read_resource: v5::read_resource::Request;
    plan_resource_change: v6::plan_resource_change::Request => v6::plan_resource_change::Response,
        plan_resource_change: v5::plan_resource_change::Request;
    apply_resource_change: v6::apply_resource_change::Request => v6::apply_resource_change::Response,
        apply_resource_change: v5::apply_resource_change::Request;
    import_resource_state: v6::import_resource_state::Request => v6::import_resource_state::Response,
        import_resource_state: v5::import_resource_state::Request;
    read_data_source: v6::read_data_source::Request => v6::read_data_source::Response,
        read_data_source: v5::read_data_source::Request;
    validate_ephemeral_resource_config: v6::validate_ephemeral_resource_config::Request => v6::validate_ephemeral_resource_config::Response,
        validate_ephemeral_resource_config: v5::validate_ephemeral_resource_config::Request;
    open_ephemeral_resource: v6::open_ephemeral_resource::Request => v6::open_ephemeral_resource::Response,
        open_ephemeral_resource: v5::open_ephemeral_resource::Request;
    renew_ephemeral_resource: v6::renew_ephemeral_resource::Request => v6::renew_ephemeral_resource::Response,
        renew_ephemeral_resource: v5::renew_ephemeral_resource::Request;
    close_ephemeral_resource: v6::close_ephemeral_resource::Request => v6::close_ephemeral_resource::Response,
        close_ephemeral_resource: v5::close_ephemeral_resource::Request;
}
