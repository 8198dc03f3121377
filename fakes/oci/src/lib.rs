//! fake-oci (being built; see ARCHITECTURE.md).
