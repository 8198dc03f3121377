//! The lxd provider's configuration numbers: any `port` is a TCP port or an error on
//! `remote[i].port`, at validation, and configuration refuses it before any connection.

use model::diag::Severity;
use model::value::Value;
use proptest::prelude::*;

use super::LxdProvider;
use crate::core::Provider;

fn config(address: &str, port: Option<&str>) -> (tempfile::TempDir, Value) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let Value::Object(mut map) = Value::null_block(&model::provider_lxd::schema().block) else {
        unreachable!("a block is an object")
    };
    map.insert(
        "config_dir".into(),
        Value::string(dir.path().to_string_lossy()),
    );
    map.insert(
        "remote".into(),
        Value::List(vec![Value::object([
            ("name", Value::string("r")),
            ("address", Value::string(address)),
            ("port", port.map_or(Value::Null, Value::string)),
            ("protocol", Value::Null),
            ("default", Value::Null),
            ("token", Value::Null),
            ("password", Value::Null),
        ])]),
    );
    (dir, Value::Object(map))
}

fn errors_on(diags: &[model::diag::Diagnostic], path: &str) -> usize {
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error && d.path.to_string() == path)
        .count()
}

#[tokio::test]
async fn ports_out_of_range_are_refused_before_connecting() {
    let provider = LxdProvider::default();
    for (address, port) in [
        ("https://127.0.0.1", Some("99999")),
        ("https://127.0.0.1", Some("0")),
        ("https://127.0.0.1", Some("-1")),
        ("https://127.0.0.1", Some("1e20")),
        ("https://127.0.0.1:99999999999999999999", None),
        ("https://127.0.0.1:0", Some("8443")),
    ] {
        let (_dir, config) = config(address, port);
        let diags = provider.configure(&config).await;
        assert_eq!(
            errors_on(&diags, "remote[0]"),
            1,
            "{address} {port:?}: {diags:?}"
        );
        assert!(
            diags[0].detail.contains("1 to 65535"),
            "{address} {port:?}: {diags:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_port_is_a_tcp_port_or_an_error_on_it(
        port in prop_oneof!["[0-9]{1,25}", "-?[0-9]{0,6}(\\.[0-9])?", any::<String>()],
    ) {
        let (_dir, config) = config("https://127.0.0.1", Some(&port));
        let diags = LxdProvider::default().validate_provider(&config);
        // An empty port is unset: the default.
        let valid = port.is_empty() || matches!(port.parse::<u16>(), Ok(p) if p != 0);
        prop_assert_eq!(errors_on(&diags, "remote[0].port"), usize::from(!valid), "{:?}", diags);
        if !valid {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let diags = runtime.block_on(LxdProvider::default().configure(&config));
            prop_assert_eq!(errors_on(&diags, "remote[0]"), 1, "{:?}", diags);
        }
    }
}
