//! The fake's clock: the wall clock, or a manual clock that only moves when a test says so.

use std::sync::Mutex;

use time::OffsetDateTime;
use time::macros::datetime;

/// Where a manual clock starts in tests.
pub const TEST_EPOCH: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Follows the system clock, shifted by whatever `advance` added.
    System,
    /// Starts at the given instant and moves only with `advance`.
    Manual(OffsetDateTime),
}

#[derive(Debug)]
pub struct Clock {
    mode: ClockMode,
    offset: Mutex<time::Duration>,
}

impl Clock {
    pub fn new(mode: ClockMode) -> Clock {
        Clock {
            mode,
            offset: Mutex::new(time::Duration::ZERO),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        match self.mode {
            ClockMode::System => OffsetDateTime::now_utc() + offset,
            ClockMode::Manual(start) => start + offset,
        }
    }

    pub fn advance(&self, by: time::Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}
