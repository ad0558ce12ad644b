//! How hard to push back on guessing: a growing delay per account, a lock after many
//! consecutive failures, and a block for an address that fails across accounts.

/// Consecutive failures after which an account locks until an admin unlocks it.
pub const ACCOUNT_LOCK_AFTER: u32 = 100;
/// Failures from one address (any accounts) within the window that block the address.
pub const ADDRESS_FAILURES_MAX: u32 = 20;
pub const ADDRESS_WINDOW_SECONDS: i64 = 10 * 60;
pub const ADDRESS_BLOCK_SECONDS: i64 = 15 * 60;

/// Seconds an account waits after `consecutive` failures before the next attempt counts:
/// none for the first two, then 1, 2, 4, … seconds, at most 15 minutes.
pub fn account_delay_seconds(consecutive: u32) -> i64 {
    if consecutive < 3 {
        return 0;
    }
    let doubling = (consecutive - 3).min(20);
    (1i64 << doubling).min(15 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let delays: Vec<i64> = (0..8).map(account_delay_seconds).collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 16]);
        assert_eq!(account_delay_seconds(40), 900);
        assert_eq!(account_delay_seconds(u32::MAX), 900);
    }
}
