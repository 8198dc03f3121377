//! The Terraform plugin protocol server (being built; see ARCHITECTURE.md).
