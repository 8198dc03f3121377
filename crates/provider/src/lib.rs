//! The Terraform plugin protocol (5 and 6), served for our two providers.
//!
//! `serve` does the go-plugin handshake and AutoMTLS; `core` holds the protocol-neutral
//! [`core::Provider`] trait and the protocol-6 service over it; `v5` serves protocol 5 from the
//! same service; `codec` turns DynamicValues into the model's values; `schema` turns the
//! model's schemas into the protocol's. `lxd` and `oci` are the two providers, one module per
//! Terraform type inside each.

pub mod codec;
pub mod core;
pub mod interrupt;
pub mod logging;
pub mod lxd;
pub mod oci;
pub mod schema;
pub mod serve;
pub mod tls;
pub mod v5;

pub mod proto {
    pub mod tfplugin5 {
        tonic::include_proto!("tfplugin5");
    }
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}

/// The body of each provider binary: logging, the runtime, the handshake, and a clear message
/// on failure.
pub fn main<P: core::Provider>(
    provider: impl FnOnce() -> P,
    source: &str,
) -> std::process::ExitCode {
    logging::init();
    let mode = if std::env::args()
        .skip(1)
        .any(|a| a == "--debug" || a == "-debug")
    {
        serve::Mode::Debug {
            address: source.to_owned(),
        }
    } else {
        serve::Mode::Plugin
    };
    // One thread serves everything: a provider waits on the network, and every worker thread
    // of a multi-threaded runtime would cost stacks and allocator arenas for nothing.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("cannot start: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve::serve(provider(), mode)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            std::process::ExitCode::FAILURE
        }
    }
}
