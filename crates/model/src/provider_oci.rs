//! The configuration of `terraform-provider-oci`, as users of the Go provider write it.
//!
//! Each attribute also falls back to the environment variable `OCI_<NAME>` (upper case) and
//! `TF_VAR_<name>`, then to the OCI config file profile.

use crate::diag::{AttrPath, Diagnostic};
use crate::plan;
use crate::schema::{AttrType, Attribute, Block, Kind, Presence, TypeSchema, Validator};
use crate::value::Value;

fn optional(name: &'static str, ty: AttrType, description: &'static str) -> Attribute {
    Attribute {
        name,
        ty,
        presence: Presence::Optional,
        description,
        sensitive: false,
        force_new: false,
        default: None,
        validators: Vec::new(),
        deprecated: false,
    }
}

/// The authentication methods `auth` accepts; `ApiKey` and `SecurityToken` are implemented.
pub const AUTH_METHODS: &[&str] = &[
    "ApiKey",
    "APIKey",
    "InstancePrincipal",
    "InstancePrincipalWithCerts",
    "SecurityToken",
    "ResourcePrincipal",
    "OKEWorkloadIdentity",
    "WorkloadIdentityFederation",
];

pub const EXAMPLE: &str = r#"provider "oci" {
  tenancy_ocid     = var.tenancy_ocid
  user_ocid        = var.user_ocid
  fingerprint      = var.fingerprint
  private_key_path = var.private_key_path
  region           = var.region
}
"#;

pub fn schema() -> TypeSchema {
    let string = || AttrType::String;
    TypeSchema {
        name: "oci",
        kind: Kind::Provider,
        version: 0,
        importable: false,
        import_id_format: None,
        block: Block {
            description: "The OCI provider manages OCI Identity auth tokens, authenticating with an API signing key or with a session of `oci session authenticate`.",
            blocks: Vec::new(),
            attributes: vec![
                Attribute {
                    validators: vec![Validator::OneOf(AUTH_METHODS)],
                    ..optional(
                        "auth",
                        string(),
                        "The authentication method. Defaults to `ApiKey` (an API signing key). `SecurityToken` signs with a session of `oci session authenticate`: the profile named by `config_file_profile` must hold `security_token_file` and `key_file`, as that command writes them, and an expired session is an error that says to run `oci session refresh`. The other methods answer a clear error.",
                    )
                },
                optional(
                    "tenancy_ocid",
                    string(),
                    "The OCID of the tenancy. Also `OCI_TENANCY_OCID`.",
                ),
                optional(
                    "user_ocid",
                    string(),
                    "The OCID of the user that signs requests. Also `OCI_USER_OCID`.",
                ),
                optional(
                    "fingerprint",
                    string(),
                    "The fingerprint of the API signing key. Also `OCI_FINGERPRINT`.",
                ),
                Attribute {
                    sensitive: true,
                    ..optional(
                        "private_key",
                        string(),
                        "The API signing private key, PEM. Also `OCI_PRIVATE_KEY`.",
                    )
                },
                optional(
                    "private_key_path",
                    string(),
                    "The path of the API signing private key. Also `OCI_PRIVATE_KEY_PATH`.",
                ),
                Attribute {
                    sensitive: true,
                    ..optional(
                        "private_key_password",
                        string(),
                        "The passphrase of an encrypted private key. Also `OCI_PRIVATE_KEY_PASSWORD`.",
                    )
                },
                optional(
                    "region",
                    string(),
                    "The region, such as `us-ashburn-1`. Also `OCI_REGION`.",
                ),
                optional(
                    "config_file_profile",
                    string(),
                    "The profile of the OCI config file (`~/.oci/config`, or `OCI_CONFIG_FILE`) to read settings from. Defaults to `DEFAULT`.",
                ),
                optional(
                    "endpoint",
                    string(),
                    "The Identity endpoint, overriding the one derived from `region`, such as `http://127.0.0.1:18080` for fake-oci. The `CLIENT_HOST_OVERRIDES` variable of the Oracle provider (`oci_identity.IdentityClient=URL`) is read too.",
                ),
                optional(
                    "retry_duration_seconds",
                    AttrType::Number,
                    "How long to keep retrying throttled or failed requests, in seconds, from 0 (no retries) to 86400 (a day). Defaults to 600. Each request still gets its own time limit.",
                ),
                optional(
                    "disable_auto_retries",
                    AttrType::Bool,
                    "Do not retry failed requests.",
                ),
            ],
        },
    }
}

/// The largest `retry_duration_seconds`: a day.
pub const MAX_RETRY_DURATION_SECONDS: f64 = 86_400.0;

/// `retry_duration_seconds` as a duration: `None` when unset (or not known yet), an error
/// diagnostic on the attribute when it is not a number of seconds from 0 to a day.
pub fn retry_duration(config: &Value) -> Result<Option<std::time::Duration>, Diagnostic> {
    let seconds = match config.get("retry_duration_seconds") {
        Value::Null | Value::Unknown => return Ok(None),
        Value::Number(seconds) => *seconds,
        _ => return Err(bad_retry_duration("a string or another type")),
    };
    if !(0.0..=MAX_RETRY_DURATION_SECONDS).contains(&seconds) {
        return Err(bad_retry_duration(&seconds.to_string()));
    }
    std::time::Duration::try_from_secs_f64(seconds)
        .map(Some)
        .map_err(|_| bad_retry_duration(&seconds.to_string()))
}

fn bad_retry_duration(got: &str) -> Diagnostic {
    Diagnostic::error(
        AttrPath::attr("retry_duration_seconds"),
        "Invalid value for `retry_duration_seconds`",
        format!(
            "`retry_duration_seconds` must be a number of seconds from 0 to {MAX_RETRY_DURATION_SECONDS}; got {got}."
        ),
    )
}

/// Checks the provider configuration: the schema's rules and the range of
/// `retry_duration_seconds`.
pub fn validate(config: &Value) -> Vec<Diagnostic> {
    let mut diags = plan::validate(&schema().block, config);
    if let Err(diag) = retry_duration(config) {
        diags.push(diag);
    }
    diags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry(value: Value) -> Value {
        Value::object([("retry_duration_seconds", value)])
    }

    #[test]
    fn retry_durations_in_range_only() {
        let ok = |v: f64| retry_duration(&with_retry(Value::Number(v))).unwrap();
        assert_eq!(ok(0.0), Some(std::time::Duration::ZERO));
        assert_eq!(ok(1.5), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(ok(86_400.0), Some(std::time::Duration::from_secs(86_400)));
        assert_eq!(retry_duration(&with_retry(Value::Null)).unwrap(), None);
        assert_eq!(retry_duration(&with_retry(Value::Unknown)).unwrap(), None);
        for bad in [
            1e20,
            -1.0,
            86_400.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let diag = retry_duration(&with_retry(Value::Number(bad))).unwrap_err();
            assert_eq!(diag.path.to_string(), "retry_duration_seconds", "{bad}");
            let diags = validate(&with_retry(Value::Number(bad)));
            assert!(
                diags
                    .iter()
                    .any(|d| d.path.to_string() == "retry_duration_seconds"),
                "{bad}: {diags:?}"
            );
        }
    }
}
