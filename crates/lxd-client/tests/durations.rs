//! Retry policies of any size: the backoff and deadline arithmetic never panics, and a call to
//! an unreachable server ends soon after its deadline, however long the backoffs are.
//!
//! Raise the case count locally with `PROPTEST_CASES=10000 cargo nextest run -p lxd-client --test durations`.

use std::time::{Duration, Instant};

use lxd_client::{Client, RetryPolicy, Target};
use proptest::prelude::*;

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        Just(Duration::from_secs(u64::MAX / 2)),
        (0u64..2_000_000).prop_map(Duration::from_micros),
        any::<(u64, u32)>().prop_map(|(secs, nanos)| Duration::new(secs, nanos % 1_000_000_000)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_retry_policy_ends_without_a_panic(
        deadline_ms in 0u64..20,
        base_backoff in duration(),
        max_backoff in duration(),
        request_timeout in duration(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let retry = RetryPolicy {
            deadline: Duration::from_millis(deadline_ms),
            base_backoff,
            max_backoff,
            request_timeout,
            ..RetryPolicy::default()
        };
        let client = Client::new(Target::Unix(dir.path().join("no-such-socket")), retry);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let started = Instant::now();
        let result = runtime.block_on(client.server_info());
        prop_assert!(result.is_err());
        // The deadline is under 20 ms and a backoff past it ends the retries at once.
        prop_assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
