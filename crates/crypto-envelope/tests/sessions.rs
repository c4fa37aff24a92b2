//! Writer sessions never reuse a (subkey, nonce) pair: not across sessions
//! of one database, not across two copies of a database writing under the
//! same data key, not across threads sealing at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, Domain, EncryptionAlgorithm, KeyId, Keyring, SealObserver,
    SecretKey, SubkeyId,
};

/// Records every (subkey id, nonce counter) sealed, as the observer sees
/// it, and every sealed output of an all-zero unit: two seals under the same
/// (subkey, nonce) of the same plaintext give the same output, so distinct
/// outputs prove distinct pairs without looking at key bytes.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(SubkeyId, u64)>>,
    outputs: Mutex<Vec<Vec<u8>>>,
}

impl SealObserver for Recorder {
    fn sealed(&self, subkey: &SubkeyId, counter: u64) {
        self.seen.lock().unwrap().push((*subkey, counter));
    }
}

fn keyring(db: DbId, key: &[u8; 32], rec: &Arc<Recorder>) -> Keyring {
    let dek = DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(key).unwrap(),
    );
    let r = Keyring::new(db, Arc::new(CryptoProvider::default()));
    r.insert(dek);
    r.set_active(KeyId(1)).unwrap();
    r.set_seal_observer(Some(rec.clone() as Arc<dyn SealObserver>));
    r
}

fn seal_some(r: &Keyring, rec: &Recorder, n: usize) {
    // Each call is a new writer session, like each reopen of a database.
    let s = r.start_session().unwrap();
    for domain in [Domain::Wal, Domain::Page, Domain::Meta] {
        for _ in 0..n {
            let mut buf = [0u8; 32];
            let mut tag = [0u8; 16];
            s.sealer(domain).seal(b"", &mut buf, &mut tag).unwrap();
            let mut out = buf.to_vec();
            out.extend_from_slice(&tag);
            rec.outputs.lock().unwrap().push(out);
        }
    }
}

fn assert_no_repeats(rec: &Recorder, expected: usize) {
    let seen = rec.seen.lock().unwrap();
    assert_eq!(seen.len(), expected);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a (subkey, nonce) pair repeated");
    let outputs = rec.outputs.lock().unwrap();
    let unique: HashSet<_> = outputs.iter().collect();
    assert_eq!(
        unique.len(),
        outputs.len(),
        "two seals produced one key stream"
    );
}

#[test]
fn two_copies_of_a_database_never_share_a_subkey_nonce_pair() {
    // Two copies: same database id, same data key — as after `cp -r` or a
    // restored backup. Both keep writing, each through several "reopens".
    let rec = Arc::new(Recorder::default());
    let db = DbId([0x11; 16]);
    let original = keyring(db, &[0x22; 32], &rec);
    let copy = keyring(db, &[0x22; 32], &rec);
    for _ in 0..5 {
        seal_some(&original, &rec, 50);
        seal_some(&copy, &rec, 50);
    }
    assert_no_repeats(&rec, 2 * 5 * 3 * 50);
}

#[test]
fn concurrent_sealers_draw_distinct_counters() {
    let rec = Arc::new(Recorder::default());
    let r = keyring(DbId([3; 16]), &[4; 32], &rec);
    let s = Arc::new(r.start_session().unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut outs = Vec::new();
                for _ in 0..500 {
                    let mut buf = [0u8; 16];
                    let mut tag = [0u8; 16];
                    s.sealer(Domain::Wal).seal(b"", &mut buf, &mut tag).unwrap();
                    outs.push([&buf[..], &tag[..]].concat());
                }
                outs
            })
        })
        .collect();
    for t in threads {
        rec.outputs.lock().unwrap().extend(t.join().unwrap());
    }
    assert_no_repeats(&rec, 2000);
    let counters: HashSet<u64> = rec.seen.lock().unwrap().iter().map(|(_, c)| *c).collect();
    assert_eq!(counters, (0..2000).collect());
}

#[test]
fn sessions_of_one_database_get_fresh_salts() {
    let rec = Arc::new(Recorder::default());
    let r = keyring(DbId([5; 16]), &[6; 32], &rec);
    let salts: HashSet<_> = (0..64)
        .map(|_| *r.start_session().unwrap().salt())
        .collect();
    assert_eq!(salts.len(), 64);
}

#[test]
fn a_ticket_is_spent_once_and_only_by_its_sealer() {
    let rec = Arc::new(Recorder::default());
    let r = keyring(DbId([7; 16]), &[8; 32], &rec);
    let s = r.start_session().unwrap();
    let t1 = s.sealer(Domain::Page).draw().unwrap();
    let t2 = s.sealer(Domain::Page).draw().unwrap();
    assert_eq!((t1.counter(), t2.counter()), (0, 1));
    let mut buf = [0u8; 4];
    let mut tag = [0u8; 16];
    s.sealer(Domain::Page)
        .seal_with(t2, b"", &mut buf, &mut tag)
        .unwrap();
    // A ticket drawn from the page sealer cannot be spent on the WAL sealer.
    assert!(matches!(
        s.sealer(Domain::Wal).seal_with(t1, b"", &mut buf, &mut tag),
        Err(sealkv_crypto_envelope::CryptoError::ForeignTicket)
    ));
}
