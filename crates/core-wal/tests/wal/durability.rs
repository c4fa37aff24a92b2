//! Per-append durability and the admission check of `Wal::append_with`.

use sealkv_core_wal::{Durability, Seq, SyncMode};

use crate::*;

/// Under `SyncMode::Always`, a buffered append is acknowledged without an
/// fsync and is lost in a power cut; a synced append after it makes both
/// durable (the prefix property).
#[test]
fn buffered_appends_wait_for_no_fsync_and_a_later_sync_covers_them() {
    for prot in PROTECTIONS {
        let opts = with_sync(options(prot), SyncMode::Always);
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        wal.append(&batch(1, 40)).unwrap();
        let syncs = wal.stats().syncs;
        let seq = wal
            .append_with(&batch(2, 40), Durability::Buffered, |_| true)
            .unwrap();
        assert_eq!(seq, Some(Seq(2)));
        assert_eq!(wal.stats().syncs, syncs, "a buffered append fsynced");
        assert_eq!(wal.durable_seq(), Seq(1));
        // A torn power cut keeps a prefix: the synced record always.
        let crashed = s.fork_crashed_torn(7);
        let cv: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(crashed);
        let (_w, _, seen) = open(&cv, &opts).unwrap();
        let seqs: Vec<u64> = seen.iter().map(|(s, _)| s.0).collect();
        assert!(seqs == [1] || seqs == [1, 2], "{prot:?}: {seqs:?}");
        // A synced append covers the buffered one too.
        wal.append_with(&batch(3, 40), Durability::Sync, |_| true)
            .unwrap();
        assert_eq!(wal.durable_seq(), Seq(3));
        drop(wal);
        s.crash();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 3, "{prot:?}");

        // A clean power cut (nothing unsynced survives) loses exactly the
        // buffered record.
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        wal.append(&batch(1, 40)).unwrap();
        wal.append_with(&batch(2, 40), Durability::Buffered, |_| true)
            .unwrap();
        s.crash();
        drop(wal);
        let (_w, _, seen) = open(&v, &opts).unwrap();
        let seqs: Vec<u64> = seen.iter().map(|(s, _)| s.0).collect();
        assert_eq!(seqs, vec![1], "{prot:?}");
    }
}

/// Under `SyncMode::Never`, an append that asks for `Sync` is fsynced before
/// it is acknowledged and survives a power cut.
#[test]
fn a_synced_append_is_durable_whatever_the_mode() {
    let opts = with_sync(options(None), SyncMode::Never);
    let (s, v) = sim();
    let (wal, _, _) = open(&v, &opts).unwrap();
    wal.append(&batch(1, 40)).unwrap();
    assert_eq!(wal.durable_seq(), Seq(0));
    wal.append_with(&batch(2, 40), Durability::Sync, |_| true)
        .unwrap();
    assert_eq!(wal.durable_seq(), Seq(2));
    drop(wal);
    s.crash();
    let (_w, _, seen) = open(&v, &opts).unwrap();
    assert_eq!(seen.len(), 2);
}

/// A refused admission appends nothing and uses no sequence number; the
/// check sees the number the record would get.
#[test]
fn a_refused_admission_appends_nothing() {
    let opts = options(Some(sealkv_crypto_envelope::EncryptionAlgorithm::Aes256Gcm));
    let (_s, v) = sim();
    let (wal, _, _) = open(&v, &opts).unwrap();
    wal.append(&batch(1, 10)).unwrap();
    let mut offered = None;
    let got = wal
        .append_with(&batch(2, 10), Durability::AsConfigured, |seq| {
            offered = Some(seq);
            false
        })
        .unwrap();
    assert_eq!((got, offered), (None, Some(Seq(2))));
    assert_eq!(wal.next_seq(), Seq(2));
    assert_eq!(wal.stats().appends, 1);
    let got = wal
        .append_with(&batch(3, 10), Durability::AsConfigured, |seq| {
            offered = Some(seq);
            true
        })
        .unwrap();
    assert_eq!(got, Some(Seq(2)));
    drop(wal);
    let (_w, _, seen) = open(&v, &opts).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].1, batch(3, 10));
}
