//! lxd-client (being built; see ARCHITECTURE.md).
