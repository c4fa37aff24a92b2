//! Injected faults: the right error, no acknowledgement without
//! durability, and a poisoned log after a failed write or fsync.

use std::sync::Arc;

use sealkv_core_wal::{Error, Seq};
use sealkv_crypto_envelope::EncryptionAlgorithm;
use sealkv_fileio::{FaultKind, FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};

use crate::*;

fn faulty() -> (SimVfs, FaultyVfs, Arc<dyn Vfs>) {
    let s = SimVfs::new();
    let f = FaultyVfs::over_sim(&s);
    let v: Arc<dyn Vfs> = Arc::new(f.clone());
    (s, f, v)
}

fn io_kind(e: &Error) -> Option<std::io::ErrorKind> {
    match e {
        Error::Poisoned { cause } => io_kind(cause),
        Error::Io(fe) => Some(fe.kind()),
        _ => None,
    }
}

#[test]
fn a_failed_fsync_poisons_the_log_and_the_record_is_not_acknowledged() {
    for prot in [None, Some(EncryptionAlgorithm::Aes256Gcm)] {
        let opts = options(prot);
        let (s, f, v) = faulty();
        let (wal, _, _) = open(&v, &opts).unwrap();
        wal.append(&batch(1, 20)).unwrap();
        f.arm(FaultPlan::once(OpKind::Sync, 1));
        let err = wal.append(&batch(2, 20)).unwrap_err();
        assert!(matches!(err, Error::Poisoned { .. }), "{err}");
        assert!(io_kind(&err).is_some());
        // Never retried into a success.
        f.disarm();
        assert!(matches!(
            wal.append(&batch(3, 20)),
            Err(Error::Poisoned { .. })
        ));
        assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
        assert_eq!(wal.durable_seq(), Seq(1));
        drop(wal);
        s.crash();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(
            seen.len(),
            1,
            "the unsynced record was dropped by the failed fsync"
        );
        assert_eq!(seen[0].1, batch(1, 20));
    }
}

#[test]
fn a_failed_write_and_a_full_disk_poison_with_their_cause() {
    for fault in [FaultKind::Eio, FaultKind::NoSpace] {
        let opts = options(None);
        let (s, f, v) = faulty();
        let (wal, _, _) = open(&v, &opts).unwrap();
        wal.append(&batch(1, 20)).unwrap();
        f.arm(FaultPlan::once(OpKind::Write, 1).with_fault(fault));
        let err = wal.append(&batch(2, 20)).unwrap_err();
        let kind = io_kind(&err).unwrap();
        if fault == FaultKind::NoSpace {
            assert_eq!(kind, std::io::ErrorKind::StorageFull);
        }
        assert!(matches!(
            wal.append(&batch(3, 20)),
            Err(Error::Poisoned { .. })
        ));
        drop(wal);
        s.crash();
        let (_w, _, seen) = open(&v, &opts).unwrap();
        assert_eq!(seen.len(), 1);
    }
}

#[test]
fn a_short_write_is_completed_not_acknowledged_half_done() {
    let opts = options(Some(EncryptionAlgorithm::ChaCha20Poly1305));
    let (s, f, v) = faulty();
    let (wal, _, _) = open(&v, &opts).unwrap();
    f.arm(FaultPlan::once(OpKind::Write, 1).with_fault(FaultKind::ShortWrite));
    wal.append(&batch(1, 300)).unwrap();
    assert_eq!(f.injected(), 1);
    drop(wal);
    s.crash();
    let (_w, _, seen) = open(&v, &opts).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, batch(1, 300));
}

#[test]
fn a_failed_segment_creation_poisons_and_open_fails_cleanly() {
    let mut opts = options(None);
    opts.segment_size = 300;
    let (_s, f, v) = faulty();
    let (wal, _, _) = open(&v, &opts).unwrap();
    wal.append(&batch(1, 100)).unwrap();
    f.arm(FaultPlan::once(OpKind::Open, 1));
    // This record rotates to a new segment, whose creation fails.
    assert!(wal.append(&batch(2, 100)).is_err());
    assert!(matches!(
        wal.append(&batch(3, 100)),
        Err(Error::Poisoned { .. })
    ));
    drop(wal);
    f.arm(FaultPlan::once(OpKind::SyncDir, 1));
    assert!(matches!(open(&v, &opts), Err(Error::Io(_))));
}

/// A sync marker is an extra proof: when its write fails after a good
/// fsync, the durable append is still acknowledged, the log goes on, and
/// the partial marker is taken back.
#[test]
fn a_failed_sync_marker_write_after_a_good_fsync_is_not_fatal() {
    let opts = options(Some(EncryptionAlgorithm::Aes256Gcm));
    let (s, f, v) = faulty();
    let (wal, _, _) = open(&v, &opts).unwrap();
    // Write #1 is the record, then its fsync, then write #2: the marker.
    f.arm(FaultPlan::once(OpKind::Write, 2).with_fault(FaultKind::NoSpace));
    assert_eq!(wal.append(&batch(1, 20)).unwrap(), Seq(1));
    assert_eq!(wal.stats().sync_marker_failures, 1);
    assert_eq!(wal.append(&batch(2, 20)).unwrap(), Seq(2));
    assert_eq!(wal.stats().sync_markers, 1);
    drop(wal);
    s.crash();
    let (_w, report, seen) = open(&v, &opts).unwrap();
    assert_eq!(seen.len(), 2);
    assert!(report.torn_tail.is_none());
}
