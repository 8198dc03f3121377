//! The configuration of `terraform-provider-lxd`, as users of the Go provider write it.

use crate::schema::{AttrType, Attribute, Block, Kind, NestedBlock, Nesting, Presence, TypeSchema};

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

pub const EXAMPLE: &str = r#"provider "lxd" {
  generate_client_certificates = true
  accept_remote_certificate    = true

  remote {
    name    = "lxd-server"
    address = "https://10.1.1.8:8443"
    token   = "<trust token>"
    default = true
  }
}
"#;

pub fn schema() -> TypeSchema {
    TypeSchema {
        name: "lxd",
        kind: Kind::Provider,
        version: 0,
        importable: false,
        import_id_format: None,
        block: Block {
            description: "The LXD provider manages LXD trust tokens. Without any `remote` block it uses the lxc configuration directory and the local unix socket, as `lxc` does.",
            attributes: vec![
                optional(
                    "config_dir",
                    AttrType::String,
                    "The directory to read the lxc configuration from (remotes, client certificate, server certificates). Defaults to `$LXD_CONF`, then `$HOME/snap/lxd/common/config` when it exists, else `$HOME/.config/lxc`.",
                ),
                optional(
                    "generate_client_certificates",
                    AttrType::Bool,
                    "Generate a client certificate and key in `config_dir` when there are none. Also `LXD_GENERATE_CLIENT_CERTS`.",
                ),
                optional(
                    "accept_remote_certificate",
                    AttrType::Bool,
                    "Accept a server certificate that is not yet known. Without it an unknown certificate is refused; with a `token` the certificate is checked against the token's fingerprint instead. Also `LXD_ACCEPT_SERVER_CERTIFICATE`.",
                ),
            ],
            blocks: vec![NestedBlock {
                type_name: "remote",
                nesting: Nesting::List,
                min_items: 0,
                max_items: 0,
                force_new: false,
                description: "An LXD server to talk to. Several may be given; `default` picks the one resources use when they name none.",
                block: Block {
                    description: "",
                    blocks: Vec::new(),
                    attributes: vec![
                        Attribute {
                            presence: Presence::Required,
                            ..optional(
                                "name",
                                AttrType::String,
                                "The name of the remote, as resources refer to it in `remote`.",
                            )
                        },
                        optional(
                            "address",
                            AttrType::String,
                            "The address of the server: `https://host[:port]`, or `unix://` and a socket path. An empty `unix://` means the local socket.",
                        ),
                        optional(
                            "protocol",
                            AttrType::String,
                            "The protocol of the remote: `lxd` (the default) or `incus`. Both speak the same trust-token API; the provider learns the server's generation from the server itself.",
                        ),
                        optional(
                            "port",
                            AttrType::String,
                            "The HTTPS port, when `address` gives none. Defaults to 8443.",
                        ),
                        optional(
                            "default",
                            AttrType::Bool,
                            "Use this remote when a resource names none.",
                        ),
                        Attribute {
                            sensitive: true,
                            ..optional(
                                "token",
                                AttrType::String,
                                "A trust token to make this client trusted by the server, as `lxc remote add NAME TOKEN` does.",
                            )
                        },
                        Attribute {
                            sensitive: true,
                            ..optional(
                                "password",
                                AttrType::String,
                                "A trust password (LXD 5.0) to make this client trusted by the server.",
                            )
                        },
                    ],
                },
            }],
        },
    }
}
