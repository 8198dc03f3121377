//! The go-plugin side of a provider binary: the magic cookie, protocol negotiation, a unix
//! socket, AutoMTLS, the handshake line, and the services go-plugin expects beside the provider.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use tokio::net::UnixListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;

use crate::core::{Provider, Service};
use crate::proto::plugin;
use crate::proto::tfplugin5::provider_server::ProviderServer as V5Server;
use crate::proto::tfplugin6::provider_server::ProviderServer as V6Server;
use crate::tls;
use crate::v5::V5;

pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// The largest message Terraform may send (it reads schemas of up to 64 MiB).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "This binary is a plugin. These are not meant to be executed directly.\nPlease execute the program that consumes these plugins, which will load any plugins automatically.\n(Run it with --debug to serve it for a debugger; see the README.)"
    )]
    NotAPlugin,
    #[error("Terraform offered plugin protocol versions {0:?}; this provider speaks 5 and 6")]
    NoCommonProtocol(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Picks the newest protocol we serve among those offered (`PLUGIN_PROTOCOL_VERSIONS`).
/// `TF_PROVIDER_FORCE_PROTOCOL` narrows the choice, for testing protocol 5 with a new Terraform.
pub fn negotiate(offered: Option<&str>, forced: Option<&str>) -> Result<u32, ServeError> {
    let offered_text = offered.unwrap_or("5");
    let mut versions: Vec<u32> = offered_text
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .filter(|v| *v == 5 || *v == 6)
        .collect();
    if let Some(forced) = forced.and_then(|f| f.trim().parse::<u32>().ok()) {
        versions.retain(|v| *v == forced);
    }
    versions
        .into_iter()
        .max()
        .ok_or_else(|| ServeError::NoCommonProtocol(offered_text.to_owned()))
}

/// A private directory for the socket (mode 0700, like go-plugin's), removed at exit.
fn socket_path() -> Result<(tempfile::TempDir, PathBuf), ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("tfprovider")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base)?;
    let path = dir.path().join("plugin.sock");
    Ok((dir, path))
}

struct Controller {
    shutdown: tokio::sync::mpsc::Sender<()>,
}

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _: tonic::Request<plugin::Empty>,
    ) -> Result<tonic::Response<plugin::Empty>, tonic::Status> {
        let _ = self.shutdown.try_send(());
        Ok(tonic::Response::new(plugin::Empty {}))
    }
}

struct Stdio;

#[tonic::async_trait]
impl plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = tokio_stream::Pending<Result<plugin::StdioData, tonic::Status>>;

    /// Our logs go to stderr directly (Terraform reads it); nothing is forwarded here, so the
    /// stream stays open and empty until the plugin exits.
    async fn stream_stdio(
        &self,
        _: tonic::Request<()>,
    ) -> Result<tonic::Response<Self::StreamStdioStream>, tonic::Status> {
        Ok(tonic::Response::new(tokio_stream::pending()))
    }
}

struct Broker;

#[tonic::async_trait]
impl plugin::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = tokio_stream::Pending<Result<plugin::ConnInfo, tonic::Status>>;

    /// Terraform providers open no extra connections; the stream stays idle.
    async fn start_stream(
        &self,
        _: tonic::Request<tonic::Streaming<plugin::ConnInfo>>,
    ) -> Result<tonic::Response<Self::StartStreamStream>, tonic::Status> {
        Ok(tonic::Response::new(tokio_stream::pending()))
    }
}

/// How the binary was started.
pub enum Mode {
    /// Started by Terraform: check the cookie, print the handshake line.
    Plugin,
    /// `--debug`: serve plaintext and print `TF_REATTACH_PROVIDERS` for a debugger or a test.
    Debug { address: String },
}

/// Serves `provider` until Terraform shuts it down.
pub async fn serve<P: Provider>(provider: P, mode: Mode) -> Result<(), ServeError> {
    let env = |name: &str| std::env::var(name).ok();
    if matches!(mode, Mode::Plugin) && env(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE)
    {
        return Err(ServeError::NotAPlugin);
    }
    let protocol = match mode {
        Mode::Plugin => negotiate(
            env("PLUGIN_PROTOCOL_VERSIONS").as_deref(),
            env("TF_PROVIDER_FORCE_PROTOCOL").as_deref(),
        )?,
        Mode::Debug { .. } => negotiate(Some("5,6"), env("TF_PROVIDER_FORCE_PROTOCOL").as_deref())?,
    };
    let (_dir, path) = socket_path()?;
    let listener = UnixListener::bind(&path)?;
    let mtls = match (&mode, env("PLUGIN_CLIENT_CERT")) {
        (Mode::Plugin, Some(pem)) if !pem.trim().is_empty() => Some(tls::auto_mtls(&pem)?),
        _ => None,
    };

    let service = Arc::new(Service::new(Arc::new(provider)));
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::mpsc::channel::<()>(1);

    let mut router = Server::builder()
        .add_service(health)
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            Controller {
                shutdown: shutdown_tx,
            },
        ))
        .add_service(plugin::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(plugin::grpc_broker_server::GrpcBrokerServer::new(Broker));
    router = if protocol == 6 {
        router.add_service(
            V6Server::from_arc(service)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
    } else {
        router.add_service(
            V5Server::new(V5::new(service))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
    };

    let address = path.display().to_string();
    match &mode {
        Mode::Plugin => {
            let cert = mtls
                .as_ref()
                .map(|m| STANDARD_NO_PAD.encode(&m.server_cert_der))
                .unwrap_or_default();
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "1|{protocol}|unix|{address}|grpc|{cert}")?;
            stdout.flush()?;
        }
        Mode::Debug { address: source } => {
            let reattach = serde_json::json!({
                source.as_str(): {
                    "Protocol": "grpc",
                    "ProtocolVersion": protocol,
                    "Pid": std::process::id(),
                    "Test": true,
                    "Addr": {"Network": "unix", "String": address},
                }
            });
            println!(
                "Provider started. To attach Terraform, set TF_REATTACH_PROVIDERS to this value:\n\n\tTF_REATTACH_PROVIDERS='{reattach}'\n"
            );
        }
    }

    // After Shutdown the server stops gracefully, but no longer than a second: go-plugin kills
    // the process two seconds after Shutdown anyway.
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopping = stop.clone();
    // Ctrl-C in a terminal reaches the whole process group, this plugin too. Like go-plugin's
    // servers, a plugin ignores it: Terraform decides, calls StopProvider and collects what the
    // calls in flight report. Served for a debugger, Ctrl-C ends the server.
    let debugging = matches!(mode, Mode::Debug { .. });
    let interrupts = async move {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return std::future::pending().await;
            }
            if debugging {
                return;
            }
            tracing::debug!("plugin received interrupt signal, ignoring");
        }
    };
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_rx.recv() => {}
            () = interrupts => {}
        }
        stopping.notify_one();
    };
    let deadline = async move {
        stop.notified().await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    let incoming = UnixListenerStream::new(listener);
    let served = async move {
        match mtls {
            Some(mtls) => {
                // Each TLS handshake runs in its own task, so a client that stalls mid-handshake
                // holds up nobody; one without the pinned certificate is dropped and logged.
                let acceptor = tokio_rustls::TlsAcceptor::from(mtls.config);
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let mut incoming = incoming;
                tokio::spawn(async move {
                    while let Some(Ok(stream)) = incoming.next().await {
                        let acceptor = acceptor.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            match acceptor.accept(stream).await {
                                Ok(tls) => {
                                    let _ = tx.send(Ok::<_, std::io::Error>(tls)).await;
                                }
                                Err(err) => tracing::warn!(%err, "refused a TLS connection"),
                            }
                        });
                    }
                });
                router
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::ReceiverStream::new(rx),
                        shutdown,
                    )
                    .await
            }
            None => {
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
        }
    };
    tokio::select! {
        result = served => result?,
        _ = deadline => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_the_newest_offered() {
        assert_eq!(negotiate(Some("5,6"), None).unwrap(), 6);
        assert_eq!(negotiate(Some("5"), None).unwrap(), 5);
        assert_eq!(negotiate(Some("5,6"), Some("5")).unwrap(), 5);
        assert!(negotiate(Some("4,7"), None).is_err());
        assert!(negotiate(Some("5"), Some("6")).is_err());
    }
}
