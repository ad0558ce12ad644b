//! Failed sign-ins per source address, kept in memory: an address that fails across accounts
//! too often is blocked for a while. (Per-account counts live in the tenant's store.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use strongroom_domain::brute_force::{
    ADDRESS_BLOCK_SECONDS, ADDRESS_FAILURES_MAX, ADDRESS_WINDOW_SECONDS,
};

/// Addresses tracked at most; the oldest windows go first beyond it.
const ADDRESSES_MAX: usize = 100_000;

#[derive(Clone, Copy)]
struct AddressRecord {
    window_start: i64,
    failures: u32,
    blocked_until: i64,
}

#[derive(Default)]
pub(crate) struct AddressThrottle {
    records: Mutex<HashMap<IpAddr, AddressRecord>>,
}

impl AddressThrottle {
    /// Seconds the address must still wait, if it is blocked at `now` (seconds).
    pub fn blocked_for(&self, address: IpAddr, now: i64) -> Option<i64> {
        let records = self.records.lock().ok()?;
        records
            .get(&address)
            .map(|record| record.blocked_until - now)
            .filter(|seconds| *seconds > 0)
    }

    /// Counts a failure; answers true when this failure blocks the address.
    pub fn record_failure(&self, address: IpAddr, now: i64) -> bool {
        let Ok(mut records) = self.records.lock() else {
            return false;
        };
        if records.len() >= ADDRESSES_MAX && !records.contains_key(&address) {
            if let Some(oldest) = records
                .iter()
                .min_by_key(|(_, record)| record.window_start)
                .map(|(address, _)| *address)
            {
                records.remove(&oldest);
            }
        }
        let record = records.entry(address).or_insert(AddressRecord {
            window_start: now,
            failures: 0,
            blocked_until: 0,
        });
        if now - record.window_start > ADDRESS_WINDOW_SECONDS {
            *record = AddressRecord {
                window_start: now,
                failures: 0,
                blocked_until: record.blocked_until,
            };
        }
        record.failures += 1;
        if record.failures >= ADDRESS_FAILURES_MAX && record.blocked_until <= now {
            record.blocked_until = now + ADDRESS_BLOCK_SECONDS;
            return true;
        }
        false
    }
}
