//! The schema of every Terraform type and its state transitions, as pure functions.
