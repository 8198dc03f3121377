//! The go-plugin side of both binaries, driven by an independent client (`support`): the cookie
//! for every binary, protocol negotiation, the handshake line and socket directory, AutoMTLS
//! refusals (a foreign P-521 certificate, no certificate) logged in hclog format, plaintext
//! without AutoMTLS, and an exit on Shutdown after go-plugin's streams were used.

mod support;

use provider::proto::plugin::grpc_broker_client::GrpcBrokerClient;
use provider::proto::plugin::grpc_stdio_client::GrpcStdioClient;
use provider::proto::tfplugin5 as v5;
use provider::proto::tfplugin6 as v6;
use support::{Identity, Plugin, channel, health, lxd_binary, oci_binary, shutdown};

const SERVING: i32 = 1;

#[tokio::test]
async fn run_by_hand_the_binaries_explain_themselves_and_exit_1() {
    for binary in [oci_binary(), lxd_binary()] {
        for env in [vec![], vec![("TF_PLUGIN_MAGIC_COOKIE", "not-the-cookie")]] {
            let mut plugin = Plugin::spawn(binary, &[], &env);
            assert_eq!(plugin.line().await, "", "nothing on stdout");
            let (code, stderr) = plugin.exited().await;
            assert_eq!(code, Some(1), "{stderr}");
            assert!(stderr.contains("This binary is a plugin"), "{stderr}");
            assert!(stderr.contains("--debug"), "{stderr}");
            assert_eq!(
                std::fs::read_dir(plugin.socket_dir()).unwrap().count(),
                0,
                "no socket was made"
            );
        }
    }
}

#[tokio::test]
async fn auto_mtls_refuses_strangers_in_the_tls_handshake_and_shutdown_ends_the_process() {
    let terraform = Identity::p521();
    let intruder = Identity::p521();
    let mut plugin = Plugin::start(
        oci_binary(),
        "5,6",
        &[
            ("PLUGIN_CLIENT_CERT", &terraform.cert_pem),
            ("TF_LOG_PROVIDER", "warn"),
        ],
    );
    let hs = plugin.handshake().await;
    assert_eq!(
        (
            hs.core.as_str(),
            hs.protocol,
            hs.network.as_str(),
            hs.rpc.as_str()
        ),
        ("1", 6, "unix", "grpc")
    );
    assert!(
        hs.address.starts_with(plugin.socket_dir()),
        "the socket honours PLUGIN_UNIX_SOCKET_DIR: {}",
        hs.address.display()
    );
    // Like go-plugin's, the directory holding the socket is the user's alone.
    let private = hs.address.parent().unwrap();
    assert_ne!(private, plugin.socket_dir(), "a directory of its own");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(private).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "socket directory mode {mode:o}");
    let server_cert = hs
        .cert
        .clone()
        .expect("AutoMTLS puts a certificate in the line");

    // What go-plugin's client checks: the certificate names localhost and allows server auth.
    let (_, cert) = x509_parser::parse_x509_certificate(&server_cert).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    assert!(san.value.general_names.iter().any(|n| matches!(
        n,
        x509_parser::extensions::GeneralName::DNSName("localhost")
    )));
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );

    // Another certificate, and no certificate at all, are refused.
    let refused = match channel(&hs, Some(&intruder)).await {
        Ok(ch) => health(ch).await.err().map(|s| s.to_string()),
        Err(e) => Some(e.to_string()),
    };
    assert!(
        refused.is_some(),
        "a foreign client certificate was accepted"
    );
    let refused = match channel(&hs, None).await {
        Ok(ch) => health(ch).await.err().map(|s| s.to_string()),
        Err(e) => Some(e.to_string()),
    };
    assert!(
        refused.is_some(),
        "a client without certificate was accepted"
    );

    // Terraform's certificate is accepted: health, the schema, and the go-plugin streams.
    let ch = channel(&hs, Some(&terraform)).await.unwrap();
    assert_eq!(health(ch.clone()).await.unwrap(), SERVING);
    let schema = v6::provider_client::ProviderClient::new(ch.clone())
        .get_provider_schema(v6::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        schema
            .resource_schemas
            .contains_key("oci_identity_auth_token")
    );
    assert!(
        schema
            .data_source_schemas
            .contains_key("oci_identity_auth_tokens")
    );
    // Terraform holds these streams open while it uses the provider; when it is done it calls
    // Shutdown and then closes its connection (go-plugin's `GRPCClient.Close`).
    let stdio = GrpcStdioClient::new(ch.clone())
        .stream_stdio(())
        .await
        .unwrap();
    let (knock, knocks) = tokio::sync::mpsc::channel(1);
    let broker = GrpcBrokerClient::new(ch.clone())
        .start_stream(tokio_stream::wrappers::ReceiverStream::new(knocks))
        .await
        .unwrap();

    shutdown(ch).await.unwrap();
    drop((stdio, broker, knock));
    let (code, stderr) = plugin.exited().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_dir(plugin.socket_dir()).unwrap().count(),
        0,
        "the socket directory is removed at exit"
    );
    // Both refusals happened in the TLS handshake, and the log says so in hclog's format.
    let refusals: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["@message"] == "refused a TLS connection")
        .collect();
    // Each stranger is refused: the wrong certificate and the missing one. (A client may try a
    // refused connection again, so the number of lines is not fixed.)
    let has = |text: &str| {
        refusals
            .iter()
            .any(|l| l["err"].as_str().is_some_and(|e| e.contains(text)))
    };
    assert!(has("ApplicationVerificationFailure"), "{stderr}");
    assert!(has("peer sent no certificates"), "{stderr}");
    assert!(
        refusals.iter().all(|l| l["err"]
            .as_str()
            .is_some_and(|e| e.contains("ApplicationVerificationFailure")
                || e.contains("peer sent no certificates"))),
        "{stderr}"
    );
    for line in &refusals {
        assert_eq!(line["@level"], "warn");
        assert!(line["@timestamp"].is_string());
    }
}

#[tokio::test]
async fn without_a_client_certificate_it_serves_plaintext() {
    for binary in [oci_binary(), lxd_binary()] {
        let mut plugin = Plugin::start(binary, "5,6", &[]);
        let hs = plugin.handshake().await;
        assert_eq!(hs.protocol, 6);
        assert!(hs.cert.is_none(), "no certificate field without AutoMTLS");
        let ch = channel(&hs, None).await.unwrap();
        assert_eq!(health(ch.clone()).await.unwrap(), SERVING);
        shutdown(ch).await.unwrap();
        let (code, stderr) = plugin.exited().await;
        assert_eq!(code, Some(0), "{stderr}");
    }
}

#[tokio::test]
async fn the_newest_offered_protocol_is_chosen_and_5_can_be_forced() {
    for (offered, forced, expected) in [
        ("5,6", None, 6),
        ("6,5", None, 6),
        ("5", None, 5),
        ("6", None, 6),
        ("5,6", Some("5"), 5),
        // Forcing a version Terraform did not offer leaves no common version: a clear error.
        ("6", Some("5"), 0),
        ("4,7", None, 0),
    ] {
        let mut env = vec![];
        if let Some(forced) = forced {
            env.push(("TF_PROVIDER_FORCE_PROTOCOL", forced));
        }
        let mut plugin = Plugin::start(oci_binary(), offered, &env);
        if expected == 0 {
            assert_eq!(plugin.line().await, "", "no handshake for {offered}");
            let (code, stderr) = plugin.exited().await;
            assert_eq!(code, Some(1), "{stderr}");
            assert!(
                stderr.contains("offered plugin protocol versions"),
                "{stderr}"
            );
            continue;
        }
        let hs = plugin.handshake().await;
        assert_eq!(
            hs.protocol, expected,
            "offered {offered}, forced {forced:?}"
        );
        let ch = channel(&hs, None).await.unwrap();
        // Only the negotiated generation is served.
        let v5_answer = v5::provider_client::ProviderClient::new(ch.clone())
            .get_schema(v5::get_provider_schema::Request {})
            .await;
        let v6_answer = v6::provider_client::ProviderClient::new(ch.clone())
            .get_provider_schema(v6::get_provider_schema::Request {})
            .await;
        assert_eq!(
            (v5_answer.is_ok(), v6_answer.is_ok()),
            (expected == 5, expected == 6)
        );
        shutdown(ch).await.unwrap();
        assert_eq!(plugin.exited().await.0, Some(0));
    }
}
