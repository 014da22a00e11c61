//! TOTP (RFC 6238) as the second factor: the one-time-password arithmetic, the `otpauth://`
//! enrolment URI and recovery codes. Storage (the secret sealed under the master key, recovery
//! codes hashed) and the pages build on this module (issue 17).
//!
//! - **Parameters** are the ones every authenticator app supports (RFC 6238 §4, the Key Uri
//!   Format's defaults): HMAC-SHA-1, 6 digits, 30-second steps, a 160-bit secret from the OS
//!   RNG (RFC 4226 §4 R6 recommends ≥ 128 bits, 160 as the HMAC-SHA-1 block).
//! - **Verification** accepts the current step and one on either side (RFC 6238 §5.2: clock
//!   drift and typing time), compares in constant time, and never accepts a step at or before
//!   the last one used (the caller stores it atomically per user), so a code cannot be used
//!   twice, even within its window.

use aws_lc_rs::hmac;

/// Seconds per step (RFC 6238 §4.1 X).
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub(crate) const DIGITS: u32 = 6;
/// Steps accepted on either side of the current one.
pub(crate) const WINDOW: i64 = 1;
/// Secret length in bytes.
pub const SECRET_BYTES: usize = 20;
/// Recovery codes issued at once.
pub(crate) const RECOVERY_CODES: usize = 10;

/// A fresh secret from the OS RNG.
pub fn new_secret() -> [u8; SECRET_BYTES] {
    shared::crypto::random_bytes::<SECRET_BYTES>()
}

/// The step containing unix time `now` (RFC 6238 §4.2, T0 = 0).
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// HOTP (RFC 4226 §5.3) of `counter` with HMAC-SHA-1, `digits` long.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    // Dynamic truncation (§5.3): the low nibble of the last byte picks four bytes.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    bin % 10u32.pow(digits)
}

/// The code for `step`, zero-padded.
pub fn code_at(secret: &[u8], step: i64) -> String {
    let code = hotp(secret, u64::try_from(step).unwrap_or(0), DIGITS);
    format!("{code:0width$}", width = DIGITS as usize)
}

/// The step `code` is valid for at `now` (within the window), if any and if it is later than
/// `last_used` (the last step this user spent). Spaces are ignored (apps show "123 456").
pub fn verify(secret: &[u8], code: &str, now: i64, last_used: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut matched = None;
    // Check every step of the window (no early exit), each compare in constant time.
    for step in (current - WINDOW)..=(current + WINDOW) {
        if step < 0 {
            continue;
        }
        let expected = code_at(secret, step);
        if shared::crypto::ct_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step);
        }
    }
    matched.filter(|step| last_used.is_none_or(|last| *step > last))
}

/// RFC 4648 base32 without padding (the Key Uri Format's secret encoding).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The enrolment URI an authenticator app scans (Key Uri Format):
/// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`.
pub(crate) fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// Ten single-use recovery codes (`xxxxx-xxxxx`, 50 bits each from the OS RNG), to show once;
/// store only their SHA-256 (`shared::crypto::sha256_hex` of the code without the dash, lower
/// case: [`normalize_recovery_code`]).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let b = base32(&shared::crypto::random_bytes::<7>()).to_lowercase();
            format!("{}-{}", &b[..5], &b[5..10])
        })
        .collect()
}

/// A recovery code as typed (any case, with or without the dash or spaces) in the form it is
/// hashed.
pub(crate) fn normalize_recovery_code(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (the last six of the eight digits).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at(secret, step_at(time)), code, "T = {time}");
        }
        // RFC 4226 Appendix D: HOTP of counters 0 and 1.
        assert_eq!(hotp(secret, 0, 6), 755_224);
        assert_eq!(hotp(secret, 1, 6), 287_082);
    }

    #[test]
    fn the_window_is_one_step_each_side_and_spent_steps_never_count() {
        let secret = new_secret();
        let now = 1_700_000_000;
        let step = step_at(now);
        let code = code_at(&secret, step);
        assert_eq!(verify(&secret, &code, now, None), Some(step));
        assert_eq!(
            verify(
                &secret,
                &format!("{} {}", &code[..3], &code[3..]),
                now,
                None
            ),
            Some(step)
        );
        // Drift: the neighbours are accepted, two steps away is not.
        assert_eq!(
            verify(&secret, &code_at(&secret, step - 1), now, None),
            Some(step - 1)
        );
        assert_eq!(
            verify(&secret, &code_at(&secret, step + 1), now, None),
            Some(step + 1)
        );
        let far = code_at(&secret, step - 2);
        if far != code && far != code_at(&secret, step - 1) && far != code_at(&secret, step + 1) {
            assert_eq!(verify(&secret, &far, now, None), None);
        }
        // Replay: once this step was used, its code (and earlier ones) fail.
        assert_eq!(verify(&secret, &code, now, Some(step)), None);
        assert_eq!(
            verify(&secret, &code_at(&secret, step - 1), now, Some(step)),
            None
        );
        assert_eq!(
            verify(&secret, &code_at(&secret, step + 1), now, Some(step)),
            Some(step + 1)
        );
        // Not a code at all.
        for bad in ["", "12345", "1234567", "abcdef", "12 34 5"] {
            assert_eq!(verify(&secret, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_and_the_enrolment_uri() {
        // RFC 4648 §10 (unpadded).
        for (input, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), encoded);
        }
        let uri = otpauth_uri(
            "authz example",
            "alice@example.com",
            b"12345678901234567890",
        );
        assert_eq!(
            uri,
            "otpauth://totp/authz%20example:alice%40example%2Ecom?secret=\
             GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=authz%20example&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalize() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 11);
            assert_eq!(
                normalize_recovery_code(&c.to_uppercase()),
                c.replace('-', "")
            );
        }
    }
}
