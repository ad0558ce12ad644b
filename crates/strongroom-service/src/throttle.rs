//! Failed sign-ins per source address, kept in memory: an address that fails across accounts
//! too often is blocked for a while. (Per-account counts live in the tenant's store.)
//!
//! An IPv6 address is counted by its /64: that is what one customer or host is given, and
//! counting single addresses would let it try from 2^64 of them.

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

/// What failures are counted under: an IPv4 address (also when written as IPv6), or an IPv6
/// address's /64.
fn source(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                v6.to_bits() & !u128::from(u64::MAX),
            )),
        },
    }
}

impl AddressThrottle {
    /// Seconds the address must still wait, if it is blocked at `now` (seconds).
    pub fn blocked_for(&self, address: IpAddr, now: i64) -> Option<i64> {
        let address = source(address);
        let records = self.records.lock().ok()?;
        records
            .get(&address)
            .map(|record| record.blocked_until - now)
            .filter(|seconds| *seconds > 0)
    }

    /// Counts a failure; answers true when this failure blocks the address.
    pub fn record_failure(&self, address: IpAddr, now: i64) -> bool {
        let address = source(address);
        let Ok(mut records) = self.records.lock() else {
            return false;
        };
        if records.len() >= ADDRESSES_MAX
            && !records.contains_key(&address)
            && let Some(oldest) = records
                .iter()
                .min_by_key(|(_, record)| record.window_start)
                .map(|(address, _)| *address)
        {
            records.remove(&oldest);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(throttle: &AddressThrottle, address: &str, times: u32) -> bool {
        let mut blocked = false;
        for _ in 0..times {
            blocked |= throttle.record_failure(address.parse().unwrap(), 1_000);
        }
        blocked
    }

    #[test]
    fn an_ipv6_network_is_counted_as_one_source() {
        let throttle = AddressThrottle::default();
        // Every failure from another address of the same /64.
        for host in 0..ADDRESS_FAILURES_MAX {
            throttle.record_failure(format!("2001:db8:1:2::{host:x}").parse().unwrap(), 1_000);
        }
        let elsewhere_in_network: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(throttle.blocked_for(elsewhere_in_network, 1_001).is_some());
        let next_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttle.blocked_for(next_network, 1_001), None);
    }

    #[test]
    fn ipv4_addresses_are_counted_one_by_one_also_when_written_as_ipv6() {
        let throttle = AddressThrottle::default();
        assert!(fail(&throttle, "::ffff:192.0.2.1", ADDRESS_FAILURES_MAX));
        assert!(
            throttle
                .blocked_for("192.0.2.1".parse().unwrap(), 1_001)
                .is_some()
        );
        assert_eq!(
            throttle.blocked_for("192.0.2.2".parse().unwrap(), 1_001),
            None
        );
    }
}
