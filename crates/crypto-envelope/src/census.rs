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
//! Recording starts only when a test calls [`start`]: cargo unifies a
//! dev-dependency's features across a workspace build, so a binary built
//! alongside the tests may carry this code, and there it records nothing.
//!
//! [`SecretKey`]: crate::SecretKey

use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::keys::KEY_LEN;

/// Copies kept at most: a test creating more keys than this sees the first
/// ones only (bounded memory for long property tests).
const MAX_RECORDED: usize = 1 << 20;

/// Boxed, so growing the list moves pointers, never key bytes (a moved-from
/// buffer is freed without being wiped).
#[allow(clippy::vec_box, reason = "growing the list must not move key bytes")]
static RECORDED: Mutex<Vec<Box<Zeroizing<[u8; KEY_LEN]>>>> = Mutex::new(Vec::new());
static ARMED: AtomicBool = AtomicBool::new(false);

/// Starts recording every key constructed from now on in this process.
/// Only a test may call this.
pub fn start() {
    ARMED.store(true, Ordering::SeqCst);
}

pub(crate) fn record(key: &[u8; KEY_LEN]) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let mut all = RECORDED.lock();
    if all.len() < MAX_RECORDED {
        all.push(Box::new(Zeroizing::new(*key)));
    }
}

/// Every key constructed in this process since [`start`] (up to about a
/// million), oldest first, duplicates included.
pub fn recorded_keys() -> Vec<Zeroizing<[u8; KEY_LEN]>> {
    RECORDED
        .lock()
        .iter()
        .map(|k| Zeroizing::new(***k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn every_constructor_is_recorded_once_started() {
        let before = SecretKey::from_bytes(&[0x11; KEY_LEN]).unwrap();
        assert!(
            !recorded_keys().iter().any(|r| r[..] == *before.expose()),
            "a key made before start() was recorded"
        );
        start();
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
