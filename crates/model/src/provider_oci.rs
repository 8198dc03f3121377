//! The configuration of `terraform-provider-oci`, as users of the Go provider write it.
//!
//! Each attribute also falls back to the environment variable `OCI_<NAME>` (upper case) and
//! `TF_VAR_<name>`, then to the OCI config file profile.

use crate::schema::{AttrType, Attribute, Block, Kind, Presence, TypeSchema, Validator};

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

/// The authentication methods `auth` accepts; only `ApiKey` is implemented.
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
            description: "The OCI provider manages OCI Identity auth tokens, authenticating with an API signing key.",
            blocks: Vec::new(),
            attributes: vec![
                Attribute {
                    validators: vec![Validator::OneOf(AUTH_METHODS)],
                    ..optional(
                        "auth",
                        string(),
                        "The authentication method. Defaults to `ApiKey`, the only one supported so far; the others answer a clear error.",
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
                    "How long to keep retrying throttled or failed requests, in seconds.",
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
