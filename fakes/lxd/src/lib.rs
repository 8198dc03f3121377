//! fake-lxd (being built; see ARCHITECTURE.md).
