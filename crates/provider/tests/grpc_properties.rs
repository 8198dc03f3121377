//! Terraform's rules for plan and apply, checked on random configurations and random server
//! events through the gRPC service in-process (protocol 6, and protocol 5 through `v5`).
//!
//! The test plays Terraform's part: it validates, upgrades the stored (JSON) state and
//! refreshes it, plans (twice for a replacement), validates and re-plans at apply time with the
//! values that were unknown at plan time, applies, and plans once more.
//! It encodes its own msgpack with `rmpv` and reads the provider's answers the same way, so a
//! codec bug cannot cancel out.
//! Each step checks what Terraform checks, or what Terraform would trip over:
//! - validation errors name the attribute, and valid configurations get none;
//! - a planned value equals the configured one wherever the configuration sets it, unknowns
//!   stay unknown, defaults fill unset optional-computed attributes, `requires_replace` names
//!   exactly the force-new attributes that change or may change;
//! - the plan made at apply time keeps the action and every value known at plan time;
//! - the applied object has no unknowns and keeps every value known in the plan;
//! - a refresh then a plan with the same configuration changes nothing when nothing happened
//!   on the server (unless the documentation says the refresh forgets the object: an expired
//!   `always` token), and after server events the refresh shows what the documentation says;
//! - no diagnostic ever carries a token.
//!
//! The modules live in `grpc_properties/`: `value` (values and msgpack), `schema`, `front` (the
//! service over either protocol), `terraform` (Terraform's part and its checks), and one module
//! per resource type with its generated configurations and server events.

#[path = "grpc_properties/front.rs"]
mod front;
#[path = "grpc_properties/lxd.rs"]
mod lxd;
#[path = "grpc_properties/oci.rs"]
mod oci;
#[path = "grpc_properties/schema.rs"]
mod schema;
#[path = "grpc_properties/terraform.rs"]
mod terraform;
#[path = "grpc_properties/value.rs"]
mod value;

use proptest::prelude::*;

use front::Proto;
use lxd::{lxd_case, run_lxd};
use oci::{oci_case, run_oci};
use terraform::{config, runtime};

proptest! {
    #![proptest_config(config(0x6c78_6436, 128))]
    #[test]
    fn lxd_trust_token_follows_terraform_rules_over_protocol_6(case in lxd_case()) {
        runtime().block_on(run_lxd(case, Proto::V6));
    }
}

proptest! {
    #![proptest_config(config(0x6c78_6435, 64))]
    #[test]
    fn lxd_trust_token_follows_terraform_rules_over_protocol_5(case in lxd_case()) {
        runtime().block_on(run_lxd(case, Proto::V5));
    }
}

proptest! {
    #![proptest_config(config(0x6f63_6936, 128))]
    #[test]
    fn oci_identity_auth_token_follows_terraform_rules_over_protocol_6(case in oci_case()) {
        runtime().block_on(run_oci(case, Proto::V6));
    }
}

proptest! {
    #![proptest_config(config(0x6f63_6935, 64))]
    #[test]
    fn oci_identity_auth_token_follows_terraform_rules_over_protocol_5(case in oci_case()) {
        runtime().block_on(run_oci(case, Proto::V5));
    }
}
