//! The one test-support module of the provider's tests: Terraform runs (`terraform`), the
//! go-plugin client (`plugin`), the fakes as the end-to-end tests start them (`fakes`) and
//! the real LXD and Incus daemons (`daemon`).
//!
//! `lxd_cli` adds what the real-LXD tests read through `lxc` (the trust store and operations as
//! JSON, joins, a poll with a deadline). Each test binary uses part of it, so unused items are
//! expected.

#![allow(dead_code, unused_imports)]

pub mod daemon;
pub mod fakes;
pub mod lxd_cli;
pub mod plugin;
pub mod terraform;

pub use plugin::*;
pub use terraform::*;

use std::path::Path;
use std::time::{Duration, Instant};

/// The `terraform-provider-lxd` binary of this build.
pub fn lxd_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-lxd"))
}

/// The `terraform-provider-oci` binary of this build.
pub fn oci_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_terraform-provider-oci"))
}

/// Polls `check` until it holds or `deadline` passes (for real daemons, which have no clock
/// a test can move).
pub fn eventually(deadline: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if check() {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
