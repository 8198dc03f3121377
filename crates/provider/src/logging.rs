//! Logs in hclog's JSON line format on stderr, which Terraform re-logs at their level when
//! `TF_LOG` or `TF_LOG_PROVIDER` asks for it. Nothing is logged unless one of them is set.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

struct Fields {
    message: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.extra
                .insert(field.name().to_owned(), serde_json::Value::String(text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.extra.insert(
                field.name().to_owned(),
                serde_json::Value::String(value.to_owned()),
            );
        }
    }
}

struct Hclog;

impl<S: Subscriber> Layer<S> for Hclog {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields {
            message: String::new(),
            extra: serde_json::Map::new(),
        };
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::TRACE => "trace",
            Level::DEBUG => "debug",
            Level::INFO => "info",
            Level::WARN => "warn",
            Level::ERROR => "error",
        };
        let mut line = fields.extra;
        line.insert("@level".into(), level.into());
        line.insert("@message".into(), fields.message.into());
        line.insert("@module".into(), event.metadata().target().into());
        line.insert(
            "@timestamp".into(),
            timestamp(time::OffsetDateTime::now_utc()).into(),
        );
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{}", serde_json::Value::Object(line));
    }
}

/// hclog's JSON time layout, the only one go-plugin's log parser accepts
/// (`2006-01-02T15:04:05.000000Z07:00`: always six fractional digits). A line whose timestamp
/// does not parse is shown by Terraform as a raw DEBUG line, whatever its level.
const TIMESTAMP: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
);

/// `at` in hclog's JSON layout (UTC).
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_default()
}

/// The level Terraform asked for, if any.
pub fn level_from_env(tf_log_provider: Option<&str>, tf_log: Option<&str>) -> Option<Level> {
    let text = tf_log_provider
        .filter(|s| !s.is_empty())
        .or(tf_log.filter(|s| !s.is_empty()))?;
    match text.to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" | "1" => Some(Level::TRACE),
        "DEBUG" => Some(Level::DEBUG),
        "INFO" => Some(Level::INFO),
        "WARN" => Some(Level::WARN),
        "ERROR" => Some(Level::ERROR),
        "OFF" => None,
        _ => Some(Level::TRACE),
    }
}

pub fn init() {
    let level = level_from_env(
        std::env::var("TF_LOG_PROVIDER").ok().as_deref(),
        std::env::var("TF_LOG").ok().as_deref(),
    );
    if let Some(level) = level {
        let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
        let _ = tracing_subscriber::registry()
            .with(Hclog.with_filter(filter))
            .try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_always_have_six_fractional_digits() {
        let check = |unix_nanos: i128, expected: &str| {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(unix_nanos).unwrap();
            assert_eq!(timestamp(at), expected);
        };
        check(0, "1970-01-01T00:00:00.000000Z");
        check(1_764_756_000_100_000_000, "2025-12-03T10:00:00.100000Z");
        check(1_764_756_000_123_456_789, "2025-12-03T10:00:00.123456Z");
        check(1_764_756_000_000_000_999, "2025-12-03T10:00:00.000000Z");
        let eastern = time::OffsetDateTime::from_unix_timestamp(1_764_756_000)
            .unwrap()
            .to_offset(time::macros::offset!(-5));
        assert_eq!(timestamp(eastern), "2025-12-03T10:00:00.000000Z");
    }
}
