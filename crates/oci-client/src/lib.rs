//! oci-client (being built; see ARCHITECTURE.md).
