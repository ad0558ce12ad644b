//! TOTP (RFC 6238) through totp-rs: 160-bit secrets, 6 digits, 30-second steps. Verification
//! reports the time step a code matched, so callers can accept each code only once.

use crate::CryptoError;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

pub const TOTP_STEP_SECONDS: u64 = 30;
const DIGITS: usize = 6;

/// A TOTP secret. Never printed; exposed only as the enrolment URI and for sealing.
pub struct TotpSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self {
            bytes: Zeroizing::new(crate::random_bytes_32()?[..20].to_vec()),
        })
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: Zeroizing::new(bytes.to_vec()),
        }
    }

    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn totp(&self, algorithm: Algorithm, issuer: Option<String>, account: String) -> TOTP {
        TOTP::new_unchecked(
            algorithm,
            DIGITS,
            0,
            TOTP_STEP_SECONDS,
            self.bytes.to_vec(),
            issuer,
            account,
        )
    }

    /// The `otpauth://` URI an authenticator app scans.
    pub fn enrolment_uri(&self, issuer: &str, account: &str) -> String {
        self.totp(Algorithm::SHA1, Some(issuer.to_owned()), account.to_owned())
            .get_url()
    }

    pub fn code_at(&self, unix_seconds: u64) -> String {
        self.totp(Algorithm::SHA1, None, String::new())
            .generate(unix_seconds)
    }

    /// The time step `code` belongs to, looking at most one step back or ahead of `now`.
    pub fn matching_step(&self, code: &str, unix_seconds: u64) -> Option<u64> {
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(Algorithm::SHA1, None, String::new());
        let step = unix_seconds / TOTP_STEP_SECONDS;
        [step.checked_sub(1), Some(step), step.checked_add(1)]
            .into_iter()
            .flatten()
            .find(|candidate| {
                constant_time_equal(
                    totp.generate(candidate * TOTP_STEP_SECONDS).as_bytes(),
                    code.as_bytes(),
                )
            })
    }
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B: 8-digit codes for SHA-1, SHA-256 and SHA-512 at the listed times.
    #[test]
    fn rfc_6238_test_vectors() {
        let seeds = [
            (Algorithm::SHA1, b"12345678901234567890".to_vec()),
            (
                Algorithm::SHA256,
                b"12345678901234567890123456789012".to_vec(),
            ),
            (
                Algorithm::SHA512,
                b"1234567890123456789012345678901234567890123456789012345678901234".to_vec(),
            ),
        ];
        let expected = [
            (59u64, ["94287082", "46119246", "90693936"]),
            (1111111109, ["07081804", "68084774", "25091201"]),
            (1111111111, ["14050471", "67062674", "99943326"]),
            (1234567890, ["89005924", "91819424", "93441116"]),
            (2000000000, ["69279037", "90698825", "38618901"]),
            (20000000000, ["65353130", "77737706", "47863826"]),
        ];
        for (time, codes) in expected {
            for ((algorithm, seed), code) in seeds.iter().zip(codes) {
                let totp =
                    TOTP::new_unchecked(*algorithm, 8, 0, 30, seed.clone(), None, String::new());
                assert_eq!(totp.generate(time), code, "{algorithm:?} at {time}");
            }
        }
    }

    #[test]
    fn codes_match_one_step_either_way_and_no_further() {
        let secret = TotpSecret::generate().unwrap();
        let now = 1_800_000_000;
        let step = now / TOTP_STEP_SECONDS;
        assert_eq!(secret.matching_step(&secret.code_at(now), now), Some(step));
        assert_eq!(
            secret.matching_step(&secret.code_at(now - 30), now),
            Some(step - 1)
        );
        assert_eq!(
            secret.matching_step(&secret.code_at(now + 30), now),
            Some(step + 1)
        );
        assert_eq!(secret.matching_step(&secret.code_at(now - 60), now), None);
        assert_eq!(secret.matching_step("12345", now), None);
        assert_eq!(secret.matching_step("abcdef", now), None);
        assert!(
            secret
                .enrolment_uri("Strongroom", "ann@example.com")
                .starts_with("otpauth://totp/Strongroom:ann%40example.com?secret=")
        );
        assert!(!format!("{secret:?}").contains(&secret.code_at(now)));
    }

    /// Debian's oathtool computes the same code the server accepts.
    #[test]
    fn oathtool_interoperates() {
        let secret = TotpSecret::generate().unwrap();
        let hex_secret = hex::encode(secret.expose_bytes());
        let now = 1_900_000_000u64;
        let output = std::process::Command::new("oathtool")
            .args(["--totp", "-N", &format!("@{now}"), &hex_secret])
            .output()
            .expect("oathtool is installed (cargo xtask test installs it)");
        let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert_eq!(
            secret.matching_step(&code, now),
            Some(now / TOTP_STEP_SECONDS),
            "oathtool said {code:?}"
        );
    }
}
