//! Test-only record of every key made in this process (feature
//! `secret-census`; never enable it outside tests).
//!
//! Data keys, field keys and the subkeys derived from them have no public
//! accessor, so a test looking for key bytes in logs, error texts or
//! `Debug` output cannot know them. With this feature every [`SecretKey`]
//! constructed — random data keys, unwrapped keys, HKDF and Argon2id
//! outputs — is also copied here (zeroized on drop), and
//! [`recorded_keys`] hands the copies to the test.
//!
//! [`SecretKey`]: crate::SecretKey

use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::keys::KEY_LEN;

/// Copies kept at most: a test creating more keys than this sees the first
/// ones only (bounded memory for long property tests).
const MAX_RECORDED: usize = 1 << 20;

static RECORDED: Mutex<Vec<Zeroizing<[u8; KEY_LEN]>>> = Mutex::new(Vec::new());

pub(crate) fn record(key: &[u8; KEY_LEN]) {
    let mut all = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    if all.len() < MAX_RECORDED {
        all.push(Zeroizing::new(*key));
    }
}

/// Every key constructed in this process so far (up to about a million),
/// oldest first, duplicates included.
pub fn recorded_keys() -> Vec<Zeroizing<[u8; KEY_LEN]>> {
    RECORDED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn every_constructor_is_recorded() {
        let a = SecretKey::random().unwrap();
        let b = SecretKey::from_bytes(&[0x5a; KEY_LEN]).unwrap();
        let mut arr = [0x3c; KEY_LEN];
        let c = SecretKey::from_array(&mut arr);
        let d = SecretKey::from_hex(&"7e".repeat(KEY_LEN)).unwrap();
        let all = recorded_keys();
        for k in [&a, &b, &c, &d] {
            assert!(
                all.iter().any(|r| r[..] == *k.expose()),
                "a constructed key was not recorded"
            );
        }
    }
}
