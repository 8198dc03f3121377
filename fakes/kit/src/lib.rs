//! `fake-kit`: what the fake servers share, so that each fake keeps only what is its own (its
//! state machine, its routes and handlers, its wire format).
//!
//! - [`clock`]: the wall clock, or a manual clock that only moves when a test says so.
//! - [`faults`]: injected faults (a status, a delay, a dropped connection), per method and path.
//! - [`serve`]: the serve loop: the in-flight count, fault injection, the request log, and a
//!   graceful shutdown.
//! - [`control`]: the control API's common routes under `/_fake/`, its loopback-only listener
//!   with a per-run bearer token, and the ready line of the standalone binaries.
//! - [`tls`]: the self-signed server and client certificates.
//!
//! The kit knows no fake's API and depends on no client and no provider crate.

pub mod clock;
pub mod control;
pub mod faults;
pub mod serve;
pub mod tls;

pub use clock::{Clock, ClockMode, TEST_EPOCH};
pub use control::{Bind, Control, ControlListener, Controlled};
pub use serve::{Api, Kit, OnHangup, RequestRecord, Service, Tasks};
