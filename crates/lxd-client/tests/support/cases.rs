//! How many cases the fault-schedule properties run, and how they spread over threads.
//!
//! A case spends its time waiting on the client's timeouts and the fake's delays, not
//! computing, so the 10,000 cases of `cargo xtask test --long` run as shards, each on its own
//! thread with its own runtime, fake and client: the wall time falls with the number of shards
//! while the processor time stays about that of one case at a time. The default counts run in
//! four shards, which took the fault schedules from 332 s to about a quarter of it.

/// The cases a property runs: `XTASK_FAULT_CASES` divided by `divisor` (at least one), or
/// `default` when it is unset or not a number.
pub fn from_env(default: u32, divisor: u32) -> u32 {
    std::env::var("XTASK_FAULT_CASES")
        .ok()
        .and_then(|c| c.parse::<u32>().ok())
        .map_or(default, |c| (c / divisor.max(1)).max(1))
}

/// Runs `run(n)` on as many threads as `cases` needs shards of at most `per_shard`, the `n`s
/// adding up to at least `cases`. A panic on any thread (a failed property) fails the caller
/// once every shard has finished.
pub fn sharded(cases: u32, per_shard: u32, run: impl Fn(u32) + Sync) {
    let shards = cases.div_ceil(per_shard.max(1)).max(1);
    let each = cases.div_ceil(shards);
    if shards == 1 {
        run(each);
        return;
    }
    eprintln!("{cases} cases in {shards} shards of {each}");
    std::thread::scope(|scope| {
        for _ in 0..shards {
            scope.spawn(|| run(each));
        }
    });
}
