//! Ctrl-C. Terraform calls `StopProvider` when the user interrupts it, then waits for the calls
//! in flight; each of them stops at its next safe point and says so in an error diagnostic.
//! Calls that start after the stop run normally (a provider served with `--debug` outlives
//! many Terraform runs).
//!
//! The signal reaches the code of a call through a task-local, so the
//! [`crate::core::Provider`] trait needs no extra argument: the service runs each call with
//! [`run`], and resource code awaits its client through [`unless_interrupted`] (a read or a
//! wait: nothing is lost by giving up) or [`settle`] (a request that may change the remote: it
//! gets [`GRACE`] to finish, so that what it made is known and can be reported).
//!
//! A call whose gRPC request Terraform cancels is dropped by tonic at its current await point;
//! nothing of it runs afterwards, and [`run`] logs that it was abandoned.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// How long a request that may change the remote still gets after an interrupt.
pub const GRACE: Duration = Duration::from_secs(2);

/// How long a call that does not look for interrupts itself gets after one, before the
/// service gives up on it.
pub const BACKSTOP: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// The stop signal of one provider: a generation number that `StopProvider` bumps.
pub struct Stop {
    generation: watch::Sender<u64>,
}

impl Default for Stop {
    fn default() -> Stop {
        Stop {
            generation: watch::Sender::new(0),
        }
    }
}

impl Stop {
    /// The signal of a call starting now: it fires at the next [`Stop::stop`].
    pub fn call(&self) -> Call {
        let watch = self.generation.subscribe();
        let started = *watch.borrow();
        Call { watch, started }
    }

    /// Interrupts every call in flight.
    pub fn stop(&self) {
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
    }
}

/// The stop signal as one call sees it.
#[derive(Clone)]
pub struct Call {
    watch: watch::Receiver<u64>,
    started: u64,
}

impl Call {
    /// Resolves once the call is interrupted (never, if its provider is gone).
    pub async fn interrupted(&self) {
        let mut watch = self.watch.clone();
        let started = self.started;
        if watch.wait_for(|g| *g != started).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

tokio::task_local! {
    static CALL: Call;
}

/// Logs a call that was dropped before it finished (its gRPC request was cancelled).
struct Abandoned {
    rpc: &'static str,
    finished: bool,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                rpc = self.rpc,
                "Terraform cancelled the call; it stopped where it was"
            );
        }
    }
}

/// Runs `work`, the provider's side of the RPC `rpc`, with `call` visible to
/// [`unless_interrupted`] and [`settle`]. After an interrupt, `work` gets `grace` to return
/// (it normally returns at once, with what it knows); then it is dropped.
pub async fn run<F: Future>(
    call: Call,
    rpc: &'static str,
    grace: Duration,
    work: F,
) -> Result<F::Output, Interrupted> {
    let mut abandoned = Abandoned {
        rpc,
        finished: false,
    };
    let signal = call.clone();
    let mut work = std::pin::pin!(CALL.scope(call, work));
    let out = tokio::select! {
        biased;
        out = &mut work => Ok(out),
        () = signal.interrupted() => {
            tokio::time::timeout(grace, &mut work).await.map_err(|_| Interrupted)
        }
    };
    abandoned.finished = true;
    out
}

/// Resolves once the current call is interrupted (never outside [`run`]).
pub async fn interrupted() {
    match CALL.try_with(Call::clone) {
        Ok(call) => call.interrupted().await,
        Err(_) => std::future::pending().await,
    }
}

/// `work`, unless the call is interrupted first: for reads and waits.
pub async fn unless_interrupted<F: Future>(work: F) -> Result<F::Output, Interrupted> {
    tokio::select! {
        biased;
        out = work => Ok(out),
        () = interrupted() => Err(Interrupted),
    }
}

/// `work`, given [`GRACE`] to finish after an interrupt: for a request that may change the
/// remote, so that its outcome is known whenever the remote answers promptly.
pub async fn settle<F: Future>(work: F) -> Result<F::Output, Interrupted> {
    settle_within(GRACE, work).await
}

async fn settle_within<F: Future>(grace: Duration, work: F) -> Result<F::Output, Interrupted> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        biased;
        out = &mut work => Ok(out),
        () = interrupted() => {
            tokio::time::timeout(grace, &mut work).await.map_err(|_| Interrupted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough never to run out in a test.
    const AMPLE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_stop_interrupts_the_calls_in_flight_and_not_later_ones() {
        let stop = Stop::default();
        let waiting = tokio::spawn(run(
            stop.call(),
            "test",
            AMPLE,
            unless_interrupted(std::future::pending::<()>()),
        ));
        stop.stop();
        assert_eq!(waiting.await.unwrap(), Ok(Err(Interrupted)));

        let out = run(stop.call(), "test", AMPLE, unless_interrupted(async { 7 })).await;
        assert_eq!(out, Ok(Ok(7)));
    }

    #[tokio::test]
    async fn settle_lets_a_change_answer_after_the_stop_within_its_grace() {
        let stop = Stop::default();
        let (answer, answered) = tokio::sync::oneshot::channel::<u8>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let change = tokio::spawn(run(stop.call(), "test", AMPLE, async move {
            let _ = started.send(());
            settle_within(AMPLE, answered).await
        }));
        running.await.unwrap();
        stop.stop();
        answer.send(3).unwrap();
        assert_eq!(change.await.unwrap(), Ok(Ok(Ok(3))));

        let stuck = run(
            stop.call(),
            "test",
            AMPLE,
            settle_within(Duration::from_millis(20), async {
                stop.stop();
                std::future::pending::<()>().await
            }),
        )
        .await;
        assert_eq!(stuck, Ok(Err(Interrupted)));
    }

    #[tokio::test]
    async fn the_service_gives_up_on_work_that_ignores_the_signal() {
        let stop = Stop::default();
        let grace = Duration::from_millis(20);
        let at = std::time::Instant::now();
        let stubborn = run(stop.call(), "test", grace, async {
            stop.stop();
            std::future::pending::<()>().await
        })
        .await;
        assert_eq!(stubborn, Err(Interrupted));
        assert!(at.elapsed() >= grace);
    }

    #[tokio::test]
    async fn outside_a_call_nothing_is_interrupted() {
        assert_eq!(unless_interrupted(async { 1 }).await, Ok(1));
        assert_eq!(settle(async { 2 }).await, Ok(2));
    }
}
