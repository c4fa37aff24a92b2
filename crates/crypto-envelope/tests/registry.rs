//! The key registry: wrong key vs damage, rekey, passphrases, crash-safe
//! replacement, destruction, generations, and a model-based property test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use sealkv_crypto_envelope::registry::{
    KekKind, KeyInfo, KeyPurpose, KeyRegistry, KeyState, RegistryError, RegistryFile,
};
use sealkv_crypto_envelope::{
    CryptoProvider, DbId, Domain, EncryptionAlgorithm, KdfParams, KeyError, KeyId, KeySource,
    KeyWrapper, Keyring, MasterKey, Passphrase, SoftwareWrapper, WrapError, field,
};
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};
use sha2::{Digest, Sha256};

const GCM: EncryptionAlgorithm = EncryptionAlgorithm::Aes256Gcm;
const SIV: EncryptionAlgorithm = EncryptionAlgorithm::Aes256GcmSiv;

fn raw(byte: u8) -> KeySource {
    KeySource::Key(MasterKey::from_bytes(&[byte; 32]).unwrap())
}

fn pass(p: &str, params: KdfParams) -> KeySource {
    KeySource::Passphrase {
        passphrase: Passphrase::new(p).unwrap(),
        params,
    }
}

/// A registry with every kind of entry: active, readable and retired data
/// keys, live and destroyed field keys.
fn busy_registry(kek: &KeySource) -> KeyRegistry {
    let mut r = KeyRegistry::create(DbId([5; 16]), kek, GCM.id()).unwrap();
    let first = r.active_data_key();
    r.rotate_data_key().unwrap();
    r.retire_data_key(first).unwrap();
    r.rotate_data_key().unwrap();
    r.add_field_key(SIV.id()).unwrap();
    let doomed = r.add_field_key(GCM.id()).unwrap();
    r.destroy_field_key(doomed).unwrap();
    r
}

/// Replaces the trailing SHA-256 so that a tampered body passes the hash.
fn rehash(bytes: &mut [u8]) {
    let at = bytes.len() - 32;
    let h: [u8; 32] = Sha256::digest(&bytes[..at]).into();
    bytes[at..].copy_from_slice(&h);
}

fn infos(r: &KeyRegistry) -> Vec<KeyInfo> {
    r.keys()
}

#[test]
fn wrong_kek_is_wrong_key_right_kek_opens() {
    let r = busy_registry(&raw(1));
    let bytes = r.to_bytes();
    assert!(matches!(
        KeyRegistry::open(&bytes, &raw(2)),
        Err(RegistryError::WrongKey)
    ));
    let back = KeyRegistry::open(&bytes, &raw(1)).unwrap();
    assert_eq!(infos(&back), infos(&r));
    assert_eq!(back.generation(), r.generation());
    assert_eq!(back.to_bytes(), bytes, "encoding is deterministic");
}

#[test]
fn a_flipped_byte_at_every_offset_is_corruption() {
    let bytes = busy_registry(&raw(1)).to_bytes();
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            match KeyRegistry::open(&b, &raw(1)) {
                Err(RegistryError::Corruption { .. }) => {}
                other => panic!("flip at {i} (mask {mask:#x}): {other:?}"),
            }
        }
    }
}

#[test]
fn a_truncated_or_extended_file_is_corruption() {
    let bytes = busy_registry(&raw(1)).to_bytes();
    for len in 0..bytes.len() {
        match KeyRegistry::open(&bytes[..len], &raw(1)) {
            Err(RegistryError::Corruption { .. }) => {}
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        KeyRegistry::open(&longer, &raw(1)),
        Err(RegistryError::Corruption { .. })
    ));
}

#[test]
fn tampering_that_fixes_the_hash_is_still_caught() {
    let bytes = busy_registry(&raw(1)).to_bytes();
    // Any change to the entries or the MAC, hash recomputed: the key check
    // passes, the registry MAC does not.
    // Entries start after the 90-byte header, the empty wrapper section's
    // length and the key check.
    for i in 124..bytes.len() - 32 {
        let mut b = bytes.clone();
        b[i] ^= 0x04;
        rehash(&mut b);
        match KeyRegistry::open(&b, &raw(1)) {
            Err(RegistryError::Corruption { .. }) => {}
            other => panic!("tamper at {i}: {other:?}"),
        }
    }
    // A changed header field, hash recomputed: the key check fails.
    let mut b = bytes.clone();
    b[81] ^= 0x01; // generation
    rehash(&mut b);
    assert!(matches!(
        KeyRegistry::open(&b, &raw(1)),
        Err(RegistryError::WrongKey)
    ));
    // A future version with a valid hash is named as such.
    let mut b = bytes.clone();
    b[9] = 3;
    rehash(&mut b);
    assert!(matches!(
        KeyRegistry::open(&b, &raw(1)),
        Err(RegistryError::UnsupportedVersion(3))
    ));
    // The same bytes labelled version 1 lose their wrapper section's
    // framing: corruption, never a misread.
    let mut b = bytes.clone();
    b[9] = 1;
    rehash(&mut b);
    assert!(matches!(
        KeyRegistry::open(&b, &raw(1)),
        Err(RegistryError::Corruption { .. } | RegistryError::WrongKey)
    ));
}

#[test]
fn rekey_rewraps_old_kek_fails_new_opens_keys_unchanged() {
    let old = raw(1);
    let mut r = busy_registry(&old);
    let field_id = r.add_field_key(SIV.id()).unwrap();

    // Seal under the DEK and the field key before the rekey.
    let keyring = r.to_keyring().unwrap();
    let session = keyring.start_session().unwrap();
    let sealer = session.sealer(Domain::Page);
    let mut page = b"page bytes".to_vec();
    let mut tag = [0u8; 16];
    let ctr = sealer.seal(b"aad", &mut page, &mut tag).unwrap();
    let subkey = *sealer.subkey_id();
    let provider = CryptoProvider::default();
    let value = field::seal_randomized(
        &provider,
        &r.field_key(field_id).unwrap(),
        b"user/1",
        b"secret",
    )
    .unwrap();

    let before = r.generation();
    let infos_before = infos(&r);
    let new = pass("correct horse battery", KdfParams::FLOOR);
    r.rekey(&new).unwrap();
    assert!(r.generation() > before);
    assert_eq!(r.kek_kind(), KekKind::Passphrase);
    let bytes = r.to_bytes();
    assert!(matches!(
        KeyRegistry::open(&bytes, &old),
        Err(RegistryError::KekKindMismatch { .. })
    ));
    r.rekey(&raw(9)).unwrap();
    let bytes = r.to_bytes();
    assert!(matches!(
        KeyRegistry::open(&bytes, &old),
        Err(RegistryError::WrongKey)
    ));
    let back = KeyRegistry::open(&bytes, &raw(9)).unwrap();
    assert_eq!(infos(&back), infos_before, "no key changed");

    let ring = back.to_keyring().unwrap();
    ring.open(&subkey, ctr, b"aad", &mut page, &tag).unwrap();
    assert_eq!(page, b"page bytes");
    let opened = field::open(
        &provider,
        &back.field_key(field_id).unwrap(),
        b"user/1",
        &value,
    )
    .unwrap();
    assert_eq!(opened, b"secret");
}

#[test]
fn passphrase_round_trip_wrong_passphrase_and_kind_mismatch() {
    let kek = pass("open sesame, please", KdfParams::FLOOR);
    let r = KeyRegistry::create(DbId([8; 16]), &kek, GCM.id()).unwrap();
    assert_eq!(r.kek_kind(), KekKind::Passphrase);
    assert_eq!(r.kdf_params(), Some(KdfParams::FLOOR));
    let bytes = r.to_bytes();
    let back = KeyRegistry::open(&bytes, &kek).unwrap();
    assert_eq!(infos(&back), infos(&r));
    // The cost given for a *new* database does not matter on open: the
    // stored one is used.
    let same_other_cost = pass("open sesame, please", KdfParams::DEFAULT);
    assert!(KeyRegistry::open(&bytes, &same_other_cost).is_ok());
    assert!(matches!(
        KeyRegistry::open(&bytes, &pass("open sesame, pleas", KdfParams::FLOOR)),
        Err(RegistryError::WrongKey)
    ));
    assert!(matches!(
        KeyRegistry::open(&bytes, &raw(1)),
        Err(RegistryError::KekKindMismatch {
            registry: KekKind::Passphrase,
            given: KekKind::Raw
        })
    ));
    let raw_bytes = busy_registry(&raw(1)).to_bytes();
    assert!(matches!(
        KeyRegistry::open(&raw_bytes, &kek),
        Err(RegistryError::KekKindMismatch {
            registry: KekKind::Raw,
            given: KekKind::Passphrase
        })
    ));
}

#[test]
fn kdf_cost_below_floor_or_above_ceiling_is_refused() {
    let weak = KdfParams {
        memory_kib: KdfParams::FLOOR.memory_kib - 1,
        ..KdfParams::FLOOR
    };
    let huge = KdfParams {
        memory_kib: KdfParams::CEILING.memory_kib + 1,
        ..KdfParams::FLOOR
    };
    let slow = KdfParams {
        iterations: KdfParams::CEILING.iterations + 1,
        ..KdfParams::FLOOR
    };
    for p in [weak, huge, slow] {
        assert!(matches!(
            KeyRegistry::create(DbId([1; 16]), &pass("pw", p), GCM.id()),
            Err(RegistryError::KdfCost(_))
        ));
    }
    // Read from a file: a header forged to a weak or enormous cost (hash
    // recomputed) is refused before any KDF runs.
    let kek = pass("pw", KdfParams::FLOOR);
    let bytes = KeyRegistry::create(DbId([1; 16]), &kek, GCM.id())
        .unwrap()
        .to_bytes();
    let forge = |offset: usize, value: u32| {
        let mut b = bytes.clone();
        b[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
        rehash(&mut b);
        KeyRegistry::open(&b, &kek)
    };
    assert!(matches!(forge(60, 1024), Err(RegistryError::KdfCost(_))));
    assert!(matches!(
        forge(60, 4 * 1024 * 1024),
        Err(RegistryError::KdfCost(_))
    ));
    assert!(matches!(forge(64, 1), Err(RegistryError::KdfCost(_))));
    assert!(matches!(forge(64, 1000), Err(RegistryError::KdfCost(_))));
    assert!(matches!(forge(68, 0), Err(RegistryError::KdfCost(_))));
    assert!(matches!(forge(68, 64), Err(RegistryError::KdfCost(_))));
}

#[test]
fn destroyed_field_key_answers_key_destroyed_and_values_are_lost() {
    let kek = raw(1);
    let mut r = KeyRegistry::create(DbId([2; 16]), &kek, GCM.id()).unwrap();
    let id = r.add_field_key(SIV.id()).unwrap();
    let provider = CryptoProvider::default();
    let _sealed =
        field::seal_deterministic(&provider, &r.field_key(id).unwrap(), b"email", b"a@b").unwrap();
    r.destroy_field_key(id).unwrap();
    assert!(matches!(r.destroy_field_key(id), Err(RegistryError::KeyDestroyed(k)) if k == id));
    let back = KeyRegistry::open(&r.to_bytes(), &kek).unwrap();
    assert!(matches!(back.field_key(id), Err(RegistryError::KeyDestroyed(k)) if k == id));
    assert_eq!(back.key(id).map(|k| k.state), Some(KeyState::Destroyed));
    // Ids are never reused.
    let mut back = back;
    assert!(back.add_field_key(SIV.id()).unwrap() > id);
}

#[test]
fn refusals_are_typed() {
    let mut r = KeyRegistry::create(DbId([2; 16]), &raw(1), GCM.id()).unwrap();
    let active = r.active_data_key();
    let field_id = r.add_field_key(SIV.id()).unwrap();
    let g = r.generation();
    assert!(matches!(r.retire_data_key(active), Err(RegistryError::ActiveKey(k)) if k == active));
    assert!(matches!(
        r.retire_data_key(KeyId(99)),
        Err(RegistryError::UnknownKey(KeyId(99)))
    ));
    assert!(matches!(
        r.retire_data_key(field_id),
        Err(RegistryError::WrongPurpose {
            expected: KeyPurpose::Data,
            actual: KeyPurpose::Field,
            ..
        })
    ));
    assert!(matches!(
        r.destroy_field_key(active),
        Err(RegistryError::WrongPurpose {
            expected: KeyPurpose::Field,
            ..
        })
    ));
    assert!(matches!(
        r.field_key(active),
        Err(RegistryError::WrongPurpose { .. })
    ));
    assert_eq!(r.generation(), g, "a refused change changes nothing");
    r.rotate_data_key().unwrap();
    r.retire_data_key(active).unwrap();
    assert!(matches!(r.retire_data_key(active), Err(RegistryError::KeyRetired(k)) if k == active));
    assert!(matches!(r.data_key(active), Err(RegistryError::KeyRetired(k)) if k == active));
    assert!(matches!(
        r.add_field_key(sealkv_crypto_envelope::AlgorithmId(0x9999)),
        Err(RegistryError::UnknownAlgorithm { .. })
    ));
    assert!(matches!(
        KeyRegistry::create(
            DbId([2; 16]),
            &raw(1),
            sealkv_crypto_envelope::AlgorithmId(0x9999)
        ),
        Err(RegistryError::UnknownAlgorithm { .. })
    ));
    // A provider without the registry's algorithms: a typed error.
    let empty = Arc::new(CryptoProvider::from_algorithms(Vec::new()).unwrap());
    assert!(matches!(
        KeyRegistry::open_with_provider(&r.to_bytes(), &raw(1), empty),
        Err(RegistryError::UnknownAlgorithm { .. })
    ));
    // The keyring of another database is refused.
    let other = Keyring::new(DbId([3; 16]), Arc::new(CryptoProvider::default()));
    assert!(matches!(
        r.fill_keyring(&other),
        Err(RegistryError::DbMismatch { .. })
    ));
}

#[test]
fn generation_strictly_increases_on_every_change() {
    let kek = raw(1);
    let mut r = KeyRegistry::create(DbId([2; 16]), &kek, GCM.id()).unwrap();
    let mut last = r.generation();
    assert_eq!(last, 1);
    let mut step = |r: &mut KeyRegistry| {
        assert!(r.generation() > last, "{} !> {last}", r.generation());
        last = r.generation();
        assert_eq!(
            KeyRegistry::open(&r.to_bytes(), &kek).unwrap().generation(),
            last
        );
    };
    let first = r.active_data_key();
    r.rotate_data_key().unwrap();
    step(&mut r);
    let f = r.add_field_key(SIV.id()).unwrap();
    step(&mut r);
    r.retire_data_key(first).unwrap();
    step(&mut r);
    r.destroy_field_key(f).unwrap();
    step(&mut r);
    r.rekey(&raw(1)).unwrap();
    step(&mut r);
}

fn sim_with_registry(dir: &Path) -> (SimVfs, RegistryFile, KeyRegistry) {
    let sim = SimVfs::new();
    sim.create_dir_all(dir).unwrap();
    let file = RegistryFile::new(Arc::new(sim.clone()), dir);
    let r = busy_registry(&raw(1));
    file.create(&r).unwrap();
    (sim, file, r)
}

#[test]
fn create_refuses_an_existing_registry_and_survives_a_crash() {
    let dir = Path::new("/db");
    let (sim, file, r) = sim_with_registry(dir);
    assert!(matches!(
        file.create(&r),
        Err(RegistryError::AlreadyExists(_))
    ));
    sim.crash();
    let back = file.load(&raw(1)).unwrap();
    assert_eq!(back.generation(), r.generation());
}

#[test]
fn crash_between_temp_write_and_rename_leaves_the_old_registry() {
    let dir = Path::new("/db");
    for seed in 0..16u64 {
        let (sim, _, old) = sim_with_registry(dir);
        let faulty = FaultyVfs::over_sim(&sim);
        let file = RegistryFile::new(Arc::new(faulty.clone()), dir);
        let mut new = old.clone();
        new.rotate_data_key().unwrap();
        faulty.arm(FaultPlan::once(OpKind::Rename, 1));
        assert!(matches!(file.store(&new), Err(RegistryError::Io(_))));
        sim.crash_torn(seed);
        let back = file.load(&raw(1)).unwrap();
        assert_eq!(back.generation(), old.generation(), "seed {seed}");
        assert_eq!(infos(&back), infos(&old));
        // The next store replaces it (the stale temp file is no obstacle).
        file.store(&new).unwrap();
        sim.crash_torn(seed);
        assert_eq!(file.load(&raw(1)).unwrap().generation(), new.generation());
    }
}

#[test]
fn a_failure_at_any_step_of_a_replace_leaves_one_whole_registry() {
    let dir = Path::new("/db");
    for op in [
        OpKind::Open,
        OpKind::Write,
        OpKind::Sync,
        OpKind::Rename,
        OpKind::SyncDir,
    ] {
        for seed in 0..8u64 {
            let (sim, _, old) = sim_with_registry(dir);
            let faulty = FaultyVfs::over_sim(&sim);
            let file = RegistryFile::new(Arc::new(faulty.clone()), dir);
            let mut new = old.clone();
            new.add_field_key(SIV.id()).unwrap();
            faulty.arm(FaultPlan::once(op, 1));
            let stored = file.store(&new);
            assert!(stored.is_err(), "{op:?}: the fault was not hit");
            sim.crash_torn(seed);
            let back = file
                .load(&raw(1))
                .unwrap_or_else(|e| panic!("{op:?} seed {seed}: {e}"));
            assert!(
                [old.generation(), new.generation()].contains(&back.generation()),
                "{op:?} seed {seed}"
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Rotate,
    AddField(bool),
    Retire(u8),
    Destroy(u8),
    Rekey(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Rotate),
        any::<bool>().prop_map(Op::AddField),
        any::<u8>().prop_map(Op::Retire),
        any::<u8>().prop_map(Op::Destroy),
        (1u8..4).prop_map(Op::Rekey),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ModelKey {
    purpose: KeyPurpose,
    state: KeyState,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random operation sequences against a BTreeMap model: after every
    /// step the registry agrees with the model, survives to_bytes/open, and
    /// every readable key is the same key as when it was made (a value
    /// sealed under it then opens under the reopened key).
    #[test]
    fn op_sequences_match_the_model_and_survive_reopen(ops in proptest::collection::vec(op(), 1..24)) {
        let provider = CryptoProvider::default();
        let mut kek = raw(1);
        let mut r = KeyRegistry::create(DbId([9; 16]), &kek, GCM.id()).unwrap();
        let mut model: BTreeMap<KeyId, ModelKey> = BTreeMap::new();
        let mut sealed: BTreeMap<KeyId, Vec<u8>> = BTreeMap::new();
        let first = r.active_data_key();
        model.insert(first, ModelKey { purpose: KeyPurpose::Data, state: KeyState::Active });
        sealed.insert(first, field::seal_randomized(&provider, &r.data_key(first).unwrap(), b"k", b"v").unwrap());
        let mut generation = r.generation();
        for op in ops {
            let ids: Vec<KeyId> = model.keys().copied().collect();
            let pick = |n: u8| ids[n as usize % ids.len()];
            let changed = match op {
                Op::Rotate => {
                    let id = r.rotate_data_key().unwrap();
                    for m in model.values_mut() {
                        if m.purpose == KeyPurpose::Data && m.state == KeyState::Active {
                            m.state = KeyState::Readable;
                        }
                    }
                    model.insert(id, ModelKey { purpose: KeyPurpose::Data, state: KeyState::Active });
                    sealed.insert(id, field::seal_randomized(&provider, &r.data_key(id).unwrap(), b"k", b"v").unwrap());
                    true
                }
                Op::AddField(siv) => {
                    let id = r.add_field_key(if siv { SIV.id() } else { GCM.id() }).unwrap();
                    model.insert(id, ModelKey { purpose: KeyPurpose::Field, state: KeyState::Active });
                    sealed.insert(id, field::seal_randomized(&provider, &r.field_key(id).unwrap(), b"k", b"v").unwrap());
                    true
                }
                Op::Retire(n) => {
                    let id = pick(n);
                    let m = model[&id];
                    let res = r.retire_data_key(id);
                    match (m.purpose, m.state) {
                        (KeyPurpose::Field, _) => prop_assert!(matches!(res, Err(RegistryError::WrongPurpose { .. })), "wrong purpose expected"),
                        (_, KeyState::Active) => prop_assert!(matches!(res, Err(RegistryError::ActiveKey(_)))),
                        (_, KeyState::Retired) => prop_assert!(matches!(res, Err(RegistryError::KeyRetired(_)))),
                        _ => {
                            prop_assert!(res.is_ok());
                            model.insert(id, ModelKey { state: KeyState::Retired, ..m });
                            sealed.remove(&id);
                        }
                    }
                    res.is_ok()
                }
                Op::Destroy(n) => {
                    let id = pick(n);
                    let m = model[&id];
                    let res = r.destroy_field_key(id);
                    match (m.purpose, m.state) {
                        (KeyPurpose::Data, _) => prop_assert!(matches!(res, Err(RegistryError::WrongPurpose { .. })), "wrong purpose expected"),
                        (_, KeyState::Destroyed) => prop_assert!(matches!(res, Err(RegistryError::KeyDestroyed(_)))),
                        _ => {
                            prop_assert!(res.is_ok());
                            model.insert(id, ModelKey { state: KeyState::Destroyed, ..m });
                            sealed.remove(&id);
                        }
                    }
                    res.is_ok()
                }
                Op::Rekey(b) => {
                    kek = raw(b);
                    r.rekey(&kek).unwrap();
                    true
                }
            };
            if changed {
                prop_assert!(r.generation() > generation);
            } else {
                prop_assert_eq!(r.generation(), generation);
            }
            generation = r.generation();

            let back = KeyRegistry::open(&r.to_bytes(), &kek).unwrap();
            prop_assert_eq!(back.generation(), generation);
            let got: BTreeMap<KeyId, ModelKey> = back
                .keys()
                .into_iter()
                .map(|k| (k.id, ModelKey { purpose: k.purpose, state: k.state }))
                .collect();
            prop_assert_eq!(&got, &model);
            for (id, m) in &model {
                let key = match m.purpose {
                    KeyPurpose::Data => back.data_key(*id),
                    KeyPurpose::Field => back.field_key(*id),
                };
                match m.state {
                    KeyState::Retired => prop_assert!(matches!(key, Err(RegistryError::KeyRetired(_)))),
                    KeyState::Destroyed => prop_assert!(matches!(key, Err(RegistryError::KeyDestroyed(_)))),
                    _ => {
                        let opened = field::open(&provider, &key.unwrap(), b"k", &sealed[id]).unwrap();
                        prop_assert_eq!(opened, b"v".to_vec());
                    }
                }
            }
            let ring = back.to_keyring().unwrap();
            prop_assert_eq!(ring.active(), Some(back.active_data_key()));
        }
    }
}

fn soft(id: &str, byte: u8) -> KeySource {
    KeySource::Wrapper(Arc::new(SoftwareWrapper::new(
        id,
        MasterKey::from_bytes(&[byte; 32]).unwrap(),
    )))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_wrapped_registry_opens_with_its_wrapper_only() {
    let kek = soft("hsm-key-1", 0x31);
    let r = busy_registry(&kek);
    assert_eq!(r.kek_kind(), KekKind::Wrapped);
    assert_eq!(r.wrapping_key(), Some(("software", "hsm-key-1")));
    let bytes = r.to_bytes();
    assert!(
        !contains(&bytes, &[0x31; 8]),
        "the wrapping key is not in the file"
    );
    assert!(contains(&bytes, b"hsm-key-1"), "the key id is recorded");
    let reopened = KeyRegistry::open(&bytes, &kek).unwrap();
    assert_eq!(infos(&reopened), infos(&r));
    let active = r.active_data_key();
    assert_eq!(
        reopened.data_key(active).unwrap().id,
        r.data_key(active).unwrap().id
    );
    assert_eq!(reopened.wrapping_key(), Some(("software", "hsm-key-1")));
    // Another key id: refused before any unwrap. The same id under another
    // key: the unwrap fails. Both are the wrong key.
    for other in [soft("hsm-key-2", 0x31), soft("hsm-key-1", 0x32)] {
        assert!(matches!(
            KeyRegistry::open(&bytes, &other),
            Err(RegistryError::WrongKey)
        ));
    }
    assert!(matches!(
        KeyRegistry::open(&bytes, &raw(0x31)),
        Err(RegistryError::KekKindMismatch {
            registry: KekKind::Wrapped,
            given: KekKind::Raw
        })
    ));
    // Damage anywhere is told apart from success.
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x10;
        assert!(KeyRegistry::open(&b, &kek).is_err(), "flip at {i} opened");
    }
}

#[test]
fn wrapper_section_tampering_with_a_fixed_hash_is_wrong_key_or_corruption() {
    let kek = soft("k", 0x41);
    let bytes = busy_registry(&kek).to_bytes();
    let section_len = usize::from(u16::from_be_bytes([bytes[90], bytes[91]]));
    assert!(section_len > 0);
    for i in 90..92 + section_len {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        rehash(&mut b);
        match KeyRegistry::open(&b, &kek) {
            Err(RegistryError::WrongKey | RegistryError::Corruption { .. }) => {}
            other => panic!("tamper at {i}: {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn rekey_moves_between_raw_passphrase_and_wrapper_keys_unchanged() {
    let mut r = busy_registry(&raw(7));
    let before: Vec<_> = r
        .keys()
        .iter()
        .filter(|k| k.state.has_material())
        .map(|k| (k.id, k.purpose))
        .collect();
    let keyring_before = r.to_keyring().unwrap();
    let session = keyring_before.start_session().unwrap();
    let sealer = session.sealer(Domain::Page);
    let mut page = b"sealed under the first keyring".to_vec();
    let mut tag = [0u8; 16];
    let ctr = sealer.seal(b"aad", &mut page, &mut tag).unwrap();
    let subkey = *sealer.subkey_id();
    let chain = [
        soft("a", 1),
        soft("b", 2),
        pass("correct horse battery", KdfParams::FLOOR),
        soft("a", 1),
        raw(8),
    ];
    let mut previous = raw(7);
    for next in chain {
        r.rekey(&next).unwrap();
        let bytes = r.to_bytes();
        assert!(
            KeyRegistry::open(&bytes, &previous).is_err(),
            "the previous KEK no longer opens"
        );
        let reopened = KeyRegistry::open(&bytes, &next).unwrap();
        let kind = match &next {
            KeySource::Passphrase { .. } => KekKind::Passphrase,
            KeySource::Wrapper(_) => KekKind::Wrapped,
            _ => KekKind::Raw,
        };
        assert_eq!(reopened.kek_kind(), kind);
        for (id, purpose) in &before {
            let k = match purpose {
                KeyPurpose::Data => reopened.data_key(*id).unwrap(),
                KeyPurpose::Field => reopened.field_key(*id).unwrap(),
            };
            assert_eq!(k.id, *id);
        }
        // The data keys themselves are unchanged: what the first keyring
        // sealed, the reopened one opens.
        let ring = reopened.to_keyring().unwrap();
        let mut opened = page.clone();
        ring.open(&subkey, ctr, b"aad", &mut opened, &tag).unwrap();
        assert_eq!(opened, b"sealed under the first keyring");
        previous = next;
        r = reopened;
    }
}

#[test]
fn a_version_1_registry_opens_and_is_rewritten_as_version_2() {
    let v1 =
        include_bytes!("../../engine/tests/golden/pagefile1-wal2-keys1-engine2/aes-256-gcm/KEYS");
    assert_eq!(&v1[8..10], &[0, 1]);
    let kek = raw(0x60);
    let r = KeyRegistry::open(v1, &kek).unwrap();
    let v2 = r.to_bytes();
    assert_eq!(&v2[8..10], &[0, 2]);
    let again = KeyRegistry::open(&v2, &kek).unwrap();
    assert_eq!(infos(&again), infos(&r));
    assert_eq!(again.generation(), r.generation());
    assert!(matches!(
        KeyRegistry::open(v1, &raw(0x61)),
        Err(RegistryError::WrongKey)
    ));
}

/// A software wrapper that records what it wrapped and whether each unwrap
/// succeeded.
struct Recording {
    inner: SoftwareWrapper,
    wrapped: std::sync::Mutex<Vec<Vec<u8>>>,
    unwraps: std::sync::Mutex<Vec<bool>>,
}

impl KeyWrapper for Recording {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn key_id(&self) -> Result<String, WrapError> {
        self.inner.key_id()
    }
    fn wrap(
        &self,
        key: &sealkv_crypto_envelope::SecretKey,
        context: &[u8],
    ) -> Result<Vec<u8>, WrapError> {
        let w = self.inner.wrap(key, context)?;
        self.wrapped.lock().unwrap().push(w.clone());
        Ok(w)
    }
    fn unwrap(
        &self,
        wrapped: &[u8],
        context: &[u8],
    ) -> Result<sealkv_crypto_envelope::SecretKey, WrapError> {
        let r = self.inner.unwrap(wrapped, context);
        self.unwraps.lock().unwrap().push(r.is_ok());
        r
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A wrapped root key is bound to its database: one copied from another
/// database's registry under the same wrapping key does not unwrap (the
/// wrapper's AAD names the database), rather than unwrapping to another
/// database's root key and failing only later.
#[test]
fn a_wrapped_root_key_moved_from_another_database_fails_at_unwrap() {
    let rec = Arc::new(Recording {
        inner: SoftwareWrapper::new("shared", MasterKey::from_bytes(&[0x77; 32]).unwrap()),
        wrapped: Default::default(),
        unwraps: Default::default(),
    });
    let kek = KeySource::Wrapper(rec.clone());
    let a = KeyRegistry::create(DbId([1; 16]), &kek, GCM.id()).unwrap();
    let from_a = rec.wrapped.lock().unwrap().last().unwrap().clone();
    let b = KeyRegistry::create(DbId([2; 16]), &kek, GCM.id()).unwrap();
    let of_b = rec.wrapped.lock().unwrap().last().unwrap().clone();
    assert_eq!(from_a.len(), of_b.len());
    let mut bytes = b.to_bytes();
    let at = bytes
        .windows(of_b.len())
        .position(|w| w == of_b)
        .expect("B's wrapped root key is in its registry");
    bytes[at..at + of_b.len()].copy_from_slice(&from_a);
    rehash(&mut bytes);
    rec.unwraps.lock().unwrap().clear();
    assert!(matches!(
        KeyRegistry::open(&bytes, &kek),
        Err(RegistryError::WrongKey)
    ));
    assert_eq!(
        *rec.unwraps.lock().unwrap(),
        vec![false],
        "the unwrap itself refused the moved key"
    );
    // Each registry still opens as written.
    KeyRegistry::open(&a.to_bytes(), &kek).unwrap();
    KeyRegistry::open(&b.to_bytes(), &kek).unwrap();
}

/// A wrapper that fails the way a broken or unreachable HSM does.
struct BrokenWrapper {
    unwraps: bool,
}

impl KeyWrapper for BrokenWrapper {
    fn kind(&self) -> &str {
        "software"
    }
    fn key_id(&self) -> Result<String, WrapError> {
        Ok("k".into())
    }
    fn wrap(
        &self,
        _key: &sealkv_crypto_envelope::SecretKey,
        _context: &[u8],
    ) -> Result<Vec<u8>, WrapError> {
        Ok(vec![7; 40])
    }
    fn unwrap(
        &self,
        _wrapped: &[u8],
        _context: &[u8],
    ) -> Result<sealkv_crypto_envelope::SecretKey, WrapError> {
        if self.unwraps {
            Ok(sealkv_crypto_envelope::SecretKey::from_bytes(&[3; 32]).unwrap())
        } else {
            Err(WrapError::Unavailable("the token does not answer".into()))
        }
    }
    fn describe(&self) -> String {
        "broken".into()
    }
}

#[test]
fn an_unreachable_wrapper_is_its_own_error_and_a_lossy_one_is_refused() {
    let bytes = busy_registry(&soft("k", 0x41)).to_bytes();
    let down = KeySource::Wrapper(Arc::new(BrokenWrapper { unwraps: false }));
    assert!(matches!(
        KeyRegistry::open(&bytes, &down),
        Err(RegistryError::Key(KeyError::Wrap(WrapError::Unavailable(
            _
        ))))
    ));
    // A wrapper whose unwrap does not give back what it wrapped would
    // leave a registry nobody can open: refused at creation and at rekey.
    let lossy = KeySource::Wrapper(Arc::new(BrokenWrapper { unwraps: true }));
    assert!(matches!(
        KeyRegistry::create(DbId([1; 16]), &lossy, GCM.id()),
        Err(RegistryError::Key(KeyError::Wrap(WrapError::Failed(_))))
    ));
    let mut r = busy_registry(&raw(1));
    let generation = r.generation();
    assert!(r.rekey(&lossy).is_err());
    assert_eq!(r.kek_kind(), KekKind::Raw);
    assert!(KeyRegistry::open(&r.to_bytes(), &raw(1)).is_ok());
    assert_eq!(r.generation(), generation);
    // The key id and description are in Debug; the wrapping key is not.
    let debug = format!("{:?}", soft("label", 0x5a));
    assert!(
        debug.contains("label") && !debug.contains("90, 90"),
        "{debug}"
    );
}
