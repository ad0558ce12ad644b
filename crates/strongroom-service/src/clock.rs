use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use strongroom_domain::Timestamp;

/// Where "now" comes from, so tests of expiry and ordering run on a fake clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_unix_micros(since_epoch.as_micros() as i64)
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
pub struct FakeClock {
    micros: Arc<AtomicI64>,
}

impl FakeClock {
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(start.unix_micros())),
        }
    }

    pub fn advance_micros(&self, micros: i64) {
        self.micros.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.micros.load(Ordering::SeqCst))
    }
}
