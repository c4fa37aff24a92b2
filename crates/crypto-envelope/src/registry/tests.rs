//! Tests that need key material (crate-private): the file-level and
//! behavioural tests are in `tests/registry.rs`.

use super::*;
use crate::EncryptionAlgorithm;
use crate::keys::MasterKey;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn registry() -> (KeyRegistry, KeySource) {
    let kek = KeySource::Key(MasterKey::from_bytes(&[0x42; 32]).unwrap());
    let reg =
        KeyRegistry::create(DbId([3; 16]), &kek, EncryptionAlgorithm::Aes256Gcm.id()).unwrap();
    (reg, kek)
}

#[test]
fn destroyed_field_key_bytes_leave_the_file() {
    let (mut reg, kek) = registry();
    let keep = reg
        .add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
        .unwrap();
    let doomed = reg
        .add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
        .unwrap();
    let doomed_secret = reg.field_key(doomed).unwrap().secret().expose().to_vec();
    let doomed_wrapped = reg.entries[&doomed].material.as_ref().unwrap().wrapped;
    let before = reg.to_bytes();
    assert!(
        contains(&before, &doomed_wrapped),
        "the wrapped key is in the file before"
    );
    reg.destroy_field_key(doomed).unwrap();
    let after = reg.to_bytes();
    assert!(!contains(&after, &doomed_wrapped));
    assert!(!contains(&after, &doomed_secret));
    assert!(!contains(&after, &doomed_secret[..16]));
    let reopened = KeyRegistry::open(&after, &kek).unwrap();
    assert!(
        matches!(reopened.field_key(doomed), Err(RegistryError::KeyDestroyed(id)) if id == doomed)
    );
    assert!(reopened.entries[&doomed].material.is_none());
    assert!(reopened.field_key(keep).is_ok());
    // No plaintext key is ever in the file.
    for id in [keep, reopened.active_data_key()] {
        let e = &reopened.entries[&id];
        let secret = e.material.as_ref().unwrap().secret.expose();
        assert!(!contains(&after, secret));
        assert!(!contains(&after, &secret[..8]));
    }
}

#[test]
fn retired_data_key_bytes_leave_the_file() {
    let (mut reg, _) = registry();
    let old = reg.active_data_key();
    let wrapped = reg.entries[&old].material.as_ref().unwrap().wrapped;
    reg.rotate_data_key().unwrap();
    assert!(contains(&reg.to_bytes(), &wrapped));
    reg.retire_data_key(old).unwrap();
    assert!(!contains(&reg.to_bytes(), &wrapped));
}

#[test]
fn debug_shows_no_key_material() {
    let (mut reg, _) = registry();
    reg.add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
        .unwrap();
    reg.rotate_data_key().unwrap();
    let dbg = format!("{reg:?}");
    let alt = format!("{reg:#?}");
    let mut secrets: Vec<Vec<u8>> = reg
        .entries
        .values()
        .filter_map(|e| e.material.as_ref())
        .flat_map(|m| [m.secret.expose().to_vec(), m.wrapped.to_vec()])
        .collect();
    secrets.push(reg.kek.clone_secrets_for_test());
    for s in [&dbg, &alt] {
        let lower = s.to_lowercase();
        for secret in &secrets {
            for chunk in secret.chunks(4) {
                assert!(
                    !lower.contains(&hex::encode(chunk)),
                    "hex of key bytes in {s}"
                );
            }
            let decimal = format!("{:?}", &secret[..4]);
            assert!(
                !s.contains(&decimal[1..decimal.len() - 1]),
                "decimal key bytes in {s}"
            );
            let upper = hex::encode_upper(&secret[..4]);
            assert!(!s.contains(&upper));
        }
        assert!(s.contains("KeyRegistry") && s.contains("generation"));
    }
}

/// Re-seals `bytes` after an edit the way only the KEK holder could: the
/// MAC recomputed with the registry's own subkey, then the trailing hash.
fn reseal(reg: &KeyRegistry, bytes: &mut [u8]) {
    use sha2::{Digest, Sha256};
    let len = bytes.len();
    let mac_at = len - 2 * format::DIGEST_LEN;
    let mac = reg.kek.mac(&bytes[..mac_at]);
    bytes[mac_at..mac_at + format::DIGEST_LEN].copy_from_slice(&mac);
    let hash = Sha256::digest(&bytes[..len - format::DIGEST_LEN]);
    bytes[len - format::DIGEST_LEN..].copy_from_slice(&hash);
}

#[test]
fn a_wrapped_key_moved_or_relabelled_does_not_open_even_with_a_valid_mac() {
    let (mut reg, kek) = registry();
    let siv = EncryptionAlgorithm::Aes256GcmSiv.id();
    reg.add_field_key(siv).unwrap();
    reg.add_field_key(siv).unwrap();
    let bytes = reg.to_bytes();
    // Entries with material: id(4) purpose(1) state(1) algorithm(2) wrapped(48).
    let entry = format::ENTRY_FIXED_LEN + format::WRAPPED_LEN;
    let first = format::ENTRIES_OFFSET; // the data key
    let second = first + entry; // field key 2
    let third = second + entry; // field key 3
    let wrapped = |at: usize| at + format::ENTRY_FIXED_LEN..at + entry;
    let expect_at = |b: &[u8], at: usize, case: &str| match KeyRegistry::open(b, &kek) {
        Err(RegistryError::Corruption { what, offset }) => {
            assert_eq!(what, "wrapped key does not open", "{case}");
            assert_eq!(offset, at as u64, "{case}");
        }
        other => panic!("{case}: {other:?}"),
    };
    // Swap the wrapped keys of the two field keys: each is bound to its id.
    let mut b = bytes.clone();
    let (x, y) = (b[wrapped(second)].to_vec(), b[wrapped(third)].to_vec());
    b[wrapped(second)].copy_from_slice(&y);
    b[wrapped(third)].copy_from_slice(&x);
    reseal(&reg, &mut b);
    expect_at(&b, second, "swapped");
    // Relabel a field key's algorithm: bound by the AAD.
    let mut b = bytes.clone();
    b[second + 6..second + 8].copy_from_slice(&EncryptionAlgorithm::Aes256Gcm.id().0.to_be_bytes());
    reseal(&reg, &mut b);
    expect_at(&b, second, "algorithm");
    // Edit one byte of the data key's wrapping.
    let mut b = bytes.clone();
    b[first + format::ENTRY_FIXED_LEN + 3] ^= 0x40;
    reseal(&reg, &mut b);
    expect_at(&b, first, "edited");
    // The untouched bytes, resealed, still open: the helper is faithful.
    let mut b = bytes;
    reseal(&reg, &mut b);
    assert!(KeyRegistry::open(&b, &kek).is_ok());
}

#[test]
fn advancing_the_generation_changes_nothing_else() {
    let (mut reg, kek) = registry();
    let before = reg.keys();
    assert_eq!(reg.advance_generation().unwrap(), 2);
    let reopened = KeyRegistry::open(&reg.to_bytes(), &kek).unwrap();
    assert_eq!(reopened.generation(), 2);
    assert_eq!(reopened.keys(), before);
    assert_eq!(reopened.active_data_key(), reg.active_data_key());
}

#[test]
fn checking_a_field_key_answers_as_taking_it_does() {
    let (mut reg, _) = registry();
    let live = reg
        .add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
        .unwrap();
    let doomed = reg
        .add_field_key(EncryptionAlgorithm::Aes256GcmSiv.id())
        .unwrap();
    reg.destroy_field_key(doomed).unwrap();
    let data = reg.active_data_key();
    let unknown = KeyId(9_999);
    let kind = |r: Result<(), RegistryError>| match r {
        Ok(()) => "ok",
        Err(RegistryError::KeyDestroyed(_)) => "destroyed",
        Err(RegistryError::UnknownKey(_)) => "unknown",
        Err(RegistryError::WrongPurpose { .. }) => "wrong purpose",
        Err(_) => "other",
    };
    let answers: Vec<_> = [live, doomed, data, unknown]
        .into_iter()
        .map(|id| {
            let checked = kind(reg.check_field_key(id));
            assert_eq!(checked, kind(reg.field_key(id).map(|_| ())), "{id}");
            checked
        })
        .collect();
    assert_eq!(answers, ["ok", "destroyed", "wrong purpose", "unknown"]);
}
