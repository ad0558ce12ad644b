//! A tenant's password policy and the decision whether a password meets it. Pure: the list of
//! common passwords, the strength estimator and the password history are given by the caller.

use serde::{Deserialize, Serialize};

/// How much variety a password needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Complexity {
    /// Length and the common-password list only (what NIST SP 800-63B advises).
    None,
    /// At least `minimum` of: lower case, upper case, digits, other characters.
    CharacterClasses { minimum: u8 },
    /// An estimated strength score (zxcvbn, 0 to 4) of at least `minimum_score`.
    Strength { minimum_score: u8 },
}

/// Set by a tenant's admins; applies from the next password change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Characters at least: 12 by default, 8 at the lowest and only when MFA is enforced.
    pub length_min: usize,
    /// Characters at most (never truncated): at least 64.
    pub length_max: usize,
    pub complexity: Complexity,
    /// Refuse passwords on the shipped list of common and breached passwords.
    pub reject_common: bool,
    /// How many previous passwords may not be used again (0 to 24).
    pub history: u8,
    /// Days after which a password must be changed; off by default, as NIST advises.
    pub expiry_days: Option<u32>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            length_min: 12,
            length_max: 128,
            complexity: Complexity::None,
            reject_common: true,
            history: 5,
            expiry_days: None,
        }
    }
}

/// The rule a password broke, for a message that says which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordRule {
    TooShort { minimum: usize },
    TooLong { maximum: usize },
    TooFewCharacterClasses { required: u8, found: u8 },
    TooWeak { required: u8, score: u8 },
    Common,
    RecentlyUsed { history: u8 },
}

impl std::fmt::Display for PasswordRule {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordRule::TooShort { minimum } => write!(
                formatter,
                "the password must have at least {minimum} characters"
            ),
            PasswordRule::TooLong { maximum } => write!(
                formatter,
                "the password may have at most {maximum} characters"
            ),
            PasswordRule::TooFewCharacterClasses { required, found } => write!(
                formatter,
                "the password must mix at least {required} of lower case, upper case, digits and other characters (it has {found})"
            ),
            PasswordRule::TooWeak { required, score } => write!(
                formatter,
                "the password is too easy to guess (strength {score} of 4, at least {required} required)"
            ),
            PasswordRule::Common => {
                formatter.write_str("the password is on the list of common or breached passwords")
            }
            PasswordRule::RecentlyUsed { history } => write!(
                formatter,
                "the password was one of the last {history} passwords of this account"
            ),
        }
    }
}

/// What the policy needs from outside to judge a password.
pub struct PasswordContext<'a> {
    /// True when the password is on the common/breached list.
    pub is_common: &'a dyn Fn(&str) -> bool,
    /// The estimated strength, 0 to 4.
    pub strength: &'a dyn Fn(&str) -> u8,
    /// True when the password matches one of the account's last `history` passwords.
    pub recently_used: &'a dyn Fn(&str) -> bool,
}

impl PasswordPolicy {
    pub const LENGTH_MIN_FLOOR: usize = 8;
    pub const LENGTH_MIN_WITHOUT_MFA: usize = 12;
    pub const LENGTH_MAX_FLOOR: usize = 64;
    pub const HISTORY_MAX: u8 = 24;
    /// Ten years: longer is no expiry, and a larger count would overflow as microseconds.
    pub const EXPIRY_DAYS_MAX: u32 = 3650;

    /// Checks the policy itself; `mfa_enforced` allows minimum lengths from 8.
    pub fn validate(&self, mfa_enforced: bool) -> Result<(), String> {
        let floor = if mfa_enforced {
            Self::LENGTH_MIN_FLOOR
        } else {
            Self::LENGTH_MIN_WITHOUT_MFA
        };
        if self.length_min < floor {
            return Err(format!(
                "length_min must be at least {floor}{}",
                if mfa_enforced {
                    ""
                } else {
                    " (8 is allowed only when MFA is enforced)"
                }
            ));
        }
        if self.length_max < Self::LENGTH_MAX_FLOOR
            || self.length_max < self.length_min
            || self.length_max > 4096
        {
            return Err(format!(
                "length_max must be from max(64, length_min) to 4096, not {}",
                self.length_max
            ));
        }
        match self.complexity {
            Complexity::CharacterClasses { minimum } if !(1..=4).contains(&minimum) => {
                return Err("character classes: minimum must be 1 to 4".into());
            }
            Complexity::Strength { minimum_score } if minimum_score > 4 => {
                return Err("strength: minimum_score must be 0 to 4".into());
            }
            _ => {}
        }
        if self.history > Self::HISTORY_MAX {
            return Err(format!("history must be at most {}", Self::HISTORY_MAX));
        }
        if self
            .expiry_days
            .is_some_and(|days| !(1..=Self::EXPIRY_DAYS_MAX).contains(&days))
        {
            return Err(format!(
                "expiry_days must be 1 to {}, or absent for no expiry",
                Self::EXPIRY_DAYS_MAX
            ));
        }
        Ok(())
    }

    /// The first rule `password` breaks, checked in a fixed order (cheap rules first).
    pub fn check(&self, password: &str, context: &PasswordContext<'_>) -> Result<(), PasswordRule> {
        let length = password.chars().count();
        if length < self.length_min {
            return Err(PasswordRule::TooShort {
                minimum: self.length_min,
            });
        }
        if length > self.length_max {
            return Err(PasswordRule::TooLong {
                maximum: self.length_max,
            });
        }
        match self.complexity {
            Complexity::None => {}
            Complexity::CharacterClasses { minimum } => {
                let found = character_classes(password);
                if found < minimum {
                    return Err(PasswordRule::TooFewCharacterClasses {
                        required: minimum,
                        found,
                    });
                }
            }
            Complexity::Strength { minimum_score } => {
                let score = (context.strength)(password);
                if score < minimum_score {
                    return Err(PasswordRule::TooWeak {
                        required: minimum_score,
                        score,
                    });
                }
            }
        }
        if self.reject_common && (context.is_common)(password) {
            return Err(PasswordRule::Common);
        }
        if self.history > 0 && (context.recently_used)(password) {
            return Err(PasswordRule::RecentlyUsed {
                history: self.history,
            });
        }
        Ok(())
    }

    /// Whether a password set at `changed_at_micros` has expired at `now_micros`.
    pub fn is_expired(&self, changed_at_micros: i64, now_micros: i64) -> bool {
        // Saturating: a policy stored before the bound was checked must not overflow.
        self.expiry_days.is_some_and(|days| {
            now_micros.saturating_sub(changed_at_micros)
                >= i64::from(days).saturating_mul(24 * 3600 * 1_000_000)
        })
    }
}

fn character_classes(password: &str) -> u8 {
    let has = |test: fn(char) -> bool| u8::from(password.chars().any(test));
    has(|c| c.is_lowercase())
        + has(|c| c.is_uppercase())
        + has(|c| c.is_numeric())
        + has(|c| !c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        common: &'a dyn Fn(&str) -> bool,
        used: &'a dyn Fn(&str) -> bool,
    ) -> PasswordContext<'a> {
        PasswordContext {
            is_common: common,
            strength: &|password| (password.len() / 5).min(4) as u8,
            recently_used: used,
        }
    }

    #[test]
    fn expiry_is_bounded_and_never_overflows() {
        let policy = |days| PasswordPolicy {
            expiry_days: Some(days),
            ..PasswordPolicy::default()
        };
        assert!(
            policy(PasswordPolicy::EXPIRY_DAYS_MAX)
                .validate(true)
                .is_ok()
        );
        assert!(policy(150_000_000).validate(true).is_err());
        assert!(policy(0).validate(true).is_err());
        // A stored policy from before the bound: no overflow, and not expired.
        assert!(!policy(u32::MAX).is_expired(0, 1_800_000_000_000_000));
        // Extreme times do not panic with an overflow either (debug builds check).
        let _ = policy(u32::MAX).is_expired(i64::MIN, i64::MAX);
        assert!(policy(1).is_expired(0, 2 * 24 * 3600 * 1_000_000));
    }

    #[test]
    fn each_rule_is_named_when_broken() {
        let never = |_: &str| false;
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check("short", &context(&never, &never)),
            Err(PasswordRule::TooShort { minimum: 12 })
        );
        assert_eq!(
            policy.check(&"a".repeat(129), &context(&never, &never)),
            Err(PasswordRule::TooLong { maximum: 128 })
        );
        assert_eq!(
            policy.check("correct horse battery", &context(&never, &never)),
            Ok(())
        );
        assert_eq!(
            policy.check("password1234", &context(&|p| p == "password1234", &never)),
            Err(PasswordRule::Common)
        );
        assert_eq!(
            policy.check("my old passphrase", &context(&never, &|_| true)),
            Err(PasswordRule::RecentlyUsed { history: 5 })
        );
        let classes = PasswordPolicy {
            complexity: Complexity::CharacterClasses { minimum: 3 },
            ..PasswordPolicy::default()
        };
        assert_eq!(
            classes.check("alllowercaseletters", &context(&never, &never)),
            Err(PasswordRule::TooFewCharacterClasses {
                required: 3,
                found: 1
            })
        );
        assert_eq!(
            classes.check("Mixed case and 1 digit", &context(&never, &never)),
            Ok(())
        );
        let strength = PasswordPolicy {
            complexity: Complexity::Strength { minimum_score: 3 },
            ..PasswordPolicy::default()
        };
        assert_eq!(
            strength.check("twelve chars", &context(&never, &never)),
            Err(PasswordRule::TooWeak {
                required: 3,
                score: 2
            })
        );
        assert!(PasswordRule::Common.to_string().contains("common"));
    }

    #[test]
    fn length_counts_characters_and_never_truncates() {
        let policy = PasswordPolicy {
            length_max: 64,
            ..PasswordPolicy::default()
        };
        let never = |_: &str| false;
        assert_eq!(
            policy.check(&"é".repeat(64), &context(&never, &never)),
            Ok(()),
            "64 characters, 128 bytes"
        );
        assert!(
            policy
                .check(&"é".repeat(65), &context(&never, &never))
                .is_err()
        );
    }

    #[test]
    fn policies_themselves_are_checked() {
        assert!(PasswordPolicy::default().validate(false).is_ok());
        let eight = PasswordPolicy {
            length_min: 8,
            ..PasswordPolicy::default()
        };
        assert!(eight.validate(false).unwrap_err().contains("MFA"));
        assert!(eight.validate(true).is_ok());
        assert!(
            PasswordPolicy {
                length_max: 63,
                ..PasswordPolicy::default()
            }
            .validate(true)
            .is_err()
        );
        assert!(
            PasswordPolicy {
                history: 25,
                ..PasswordPolicy::default()
            }
            .validate(true)
            .is_err()
        );
        assert!(
            PasswordPolicy {
                expiry_days: Some(0),
                ..PasswordPolicy::default()
            }
            .validate(true)
            .is_err()
        );
    }

    #[test]
    fn expiry_is_off_by_default() {
        let day = 24 * 3600 * 1_000_000i64;
        assert!(!PasswordPolicy::default().is_expired(0, 10_000 * day));
        let ninety = PasswordPolicy {
            expiry_days: Some(90),
            ..PasswordPolicy::default()
        };
        assert!(!ninety.is_expired(0, 89 * day));
        assert!(ninety.is_expired(0, 90 * day));
    }
}

/// zxcvbn's estimate (0 to 4) of how hard `password` is to guess, knowing `user_inputs` (the
/// user's email and name, which make a password weaker when reused in it).
pub fn strength_score(password: &str, user_inputs: &[&str]) -> u8 {
    u8::from(zxcvbn::zxcvbn(password, user_inputs).score())
}

#[cfg(test)]
mod strength_tests {
    #[test]
    fn zxcvbn_scores_weak_and_strong_passwords() {
        assert!(super::strength_score("password123", &[]) <= 1);
        let alone = super::strength_score("annpeeters", &[]);
        let with_inputs = super::strength_score("annpeeters", &["annpeeters"]);
        assert!(
            with_inputs <= alone && with_inputs <= 1,
            "user inputs make a password weaker"
        );
        assert_eq!(
            super::strength_score("correct horse battery staple violet", &[]),
            4
        );
    }
}
