use crate::StorageError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// A write handed to a store, answered once it is durable. Await it from async code (no thread
/// waits), or [`PendingWrite::wait`] from a plain thread.
#[must_use = "a write is only known to be durable once its PendingWrite resolves"]
pub struct PendingWrite<T> {
    state: State<T>,
}

enum State<T> {
    Waiting(oneshot::Receiver<Result<T, StorageError>>),
    Ready(Option<Result<T, StorageError>>),
}

/// The store's side of a [`PendingWrite`].
pub struct WriteReply<T>(oneshot::Sender<Result<T, StorageError>>);

impl<T> WriteReply<T> {
    pub fn send(self, result: Result<T, StorageError>) {
        let _ = self.0.send(result);
    }
}

impl<T> PendingWrite<T> {
    pub fn channel() -> (WriteReply<T>, Self) {
        let (sender, receiver) = oneshot::channel();
        (
            WriteReply(sender),
            Self {
                state: State::Waiting(receiver),
            },
        )
    }

    /// A write that was answered at once (refused before reaching the store).
    pub fn ready(result: Result<T, StorageError>) -> Self {
        Self {
            state: State::Ready(Some(result)),
        }
    }

    /// Blocks the calling thread until the write is answered. Not for async contexts.
    pub fn wait(self) -> Result<T, StorageError> {
        match self.state {
            State::Ready(result) => result.unwrap_or_else(|| Err(stopped())),
            State::Waiting(receiver) => receiver.blocking_recv().unwrap_or_else(|_| Err(stopped())),
        }
    }
}

fn stopped() -> StorageError {
    StorageError::Unavailable("the database writer stopped".into())
}

impl<T> Unpin for PendingWrite<T> {}

impl<T> Future for PendingWrite<T> {
    type Output = Result<T, StorageError>;

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            State::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| Err(stopped()))),
            State::Waiting(receiver) => Pin::new(receiver)
                .poll(context)
                .map(|answer| answer.unwrap_or_else(|_| Err(stopped()))),
        }
    }
}
