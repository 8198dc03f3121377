//! The schema of every Terraform type and its state transitions, as pure functions.
//!
//! This crate does no I/O and has no async: time is an argument, and the values are a small
//! semantic tree ([`value::Value`]) rather than any wire format. The provider turns the schemas
//! into the plugin protocol's and `cargo xtask docs` turns them into the registry pages.

pub mod convert;
pub mod diag;
pub mod docs;
pub mod ephemeral_lxd_trust_token;
pub mod ephemeral_oci_identity_auth_token;
pub mod lxd_trust_token;
pub mod lxd_trust_tokens;
pub mod oci_identity_auth_token;
pub mod oci_identity_auth_tokens;
pub mod oci_identity_user;
pub mod oci_token_limit;
pub mod ocid;
pub mod plan;
pub mod provider_lxd;
pub mod provider_oci;
pub mod schema;
pub mod value;

use schema::TypeSchema;

/// The resources and data sources `terraform-provider-lxd` serves.
pub fn lxd_types() -> Vec<TypeSchema> {
    vec![lxd_trust_token::schema(), lxd_trust_tokens::schema()]
}

/// The resources and data sources `terraform-provider-oci` serves.
pub fn oci_types() -> Vec<TypeSchema> {
    vec![
        oci_identity_auth_token::schema(),
        oci_identity_auth_tokens::schema(),
        oci_identity_user::schema(),
    ]
}

/// Every Terraform type, provider configurations included.
pub fn all_schemas() -> Vec<TypeSchema> {
    let mut all = vec![provider_lxd::schema(), provider_oci::schema()];
    all.extend(lxd_types());
    all.extend(oci_types());
    all
}

/// The ephemeral resources `terraform-provider-lxd` serves (Terraform 1.10 and later).
pub fn lxd_ephemeral_types() -> Vec<TypeSchema> {
    vec![ephemeral_lxd_trust_token::schema()]
}

/// The ephemeral resources `terraform-provider-oci` serves (Terraform 1.10 and later).
pub fn oci_ephemeral_types() -> Vec<TypeSchema> {
    vec![ephemeral_oci_identity_auth_token::schema()]
}
