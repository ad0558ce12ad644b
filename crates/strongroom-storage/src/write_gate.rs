//! A request's permission to commit changes, given once its audit intent is durable.
//!
//! The audit trail fails closed: a change may only commit after the event announcing it (its
//! intent) is durable. Waiting for the intent before running the request puts one more commit
//! in series on every change; instead, the API can write the intent and run the request at
//! once, under a gate. Every write job queued from inside [`WriteGate::scope`] holds the gate
//! and, on the writer's thread, waits for the intent before it runs: a refused or late intent
//! means the job answers an error and changes nothing. The audit database itself is never
//! gated (its writer settles the gates).

use crate::StorageError;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long a gated write waits for its intent before it gives up and changes nothing.
const INTENT_WAIT_MAX: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct WriteGate {
    settled: Mutex<Option<Result<(), String>>>,
    changed: Condvar,
}

tokio::task_local! {
    static CURRENT: Arc<WriteGate>;
}

impl WriteGate {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Records whether the intent is durable; wakes every write waiting on it. The first
    /// settlement counts.
    pub fn settle(&self, result: Result<(), String>) {
        if let Ok(mut settled) = self.settled.lock() {
            if settled.is_none() {
                *settled = Some(result);
            }
            self.changed.notify_all();
        }
    }

    /// Runs `future` with every write it queues held behind this gate.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The gate of the running task, if it runs inside a scope.
    pub(crate) fn current() -> Option<Arc<WriteGate>> {
        CURRENT.try_with(Arc::clone).ok()
    }

    /// Blocks the writer's thread until the intent is settled; an error if it was refused or
    /// did not come in time.
    pub(crate) fn wait(&self) -> Result<(), StorageError> {
        self.wait_at_most(INTENT_WAIT_MAX)
    }

    /// [`WriteGate::wait`] with its own limit. An intent that did not come in time is
    /// settled as refused, so no later write of the same request commits when it does come.
    fn wait_at_most(&self, limit: Duration) -> Result<(), StorageError> {
        let refused = |why: String| {
            StorageError::Unavailable(format!("the audit intent was not written: {why}"))
        };
        let settled = self
            .settled
            .lock()
            .map_err(|_| refused("gate poisoned".into()))?;
        let (mut settled, _) = self
            .changed
            .wait_timeout_while(settled, limit, |settled| settled.is_none())
            .map_err(|_| refused("gate poisoned".into()))?;
        match settled.get_or_insert_with(|| Err("it did not become durable in time".into())) {
            Ok(()) => Ok(()),
            Err(why) => Err(refused(why.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_opens_only_on_a_durable_intent() {
        let open = WriteGate::new();
        let waiter = {
            let open = open.clone();
            std::thread::spawn(move || open.wait())
        };
        open.settle(Ok(()));
        assert!(waiter.join().unwrap().is_ok());

        let refused = WriteGate::new();
        refused.settle(Err("disk full".into()));
        refused.settle(Ok(()));
        assert!(refused.wait().is_err(), "the first settlement counts");

        let late = WriteGate::new();
        assert!(late.wait_at_most(Duration::from_millis(1)).is_err());
        late.settle(Ok(()));
        assert!(
            late.wait().is_err(),
            "an intent that came too late for one write opens none of the request's writes"
        );
    }

    #[tokio::test]
    async fn writes_see_the_gate_of_their_scope_only() {
        assert!(WriteGate::current().is_none());
        let gate = WriteGate::new();
        let inside = gate
            .clone()
            .scope(async { WriteGate::current().is_some() })
            .await;
        assert!(inside);
        let spawned = gate
            .scope(async { tokio::spawn(async { WriteGate::current().is_some() }).await })
            .await
            .unwrap();
        assert!(!spawned, "a spawned task is outside the scope");
    }
}
