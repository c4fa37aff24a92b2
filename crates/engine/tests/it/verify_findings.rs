//! `verify` reports what an open repaired or stepped around: a fall-back
//! to the older meta slot, a WAL segment header that fails
//! authentication, a free page recorded as zeroed that is not.

use std::ops::ControlFlow;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, VerifyReport};
use sealkv_fileio::SimVfs;

use crate::support::{dir, modes, sim_config};

fn findings_naming(report: &VerifyReport, file: &str) -> Vec<String> {
    report
        .findings
        .iter()
        .filter(|f| f.file.to_string_lossy().contains(file))
        .map(|f| f.what.clone())
        .collect()
}

/// Both ways `verify` is run: on a read-only open (the CLI's) and on a
/// writable one (which repairs what it may before `verify` looks).
fn verify_both_ways(vfs: &SimVfs, alg: Option<EncryptionAlgorithm>) -> [VerifyReport; 2] {
    [true, false].map(|read_only| {
        let snapshot = vfs.fork_crashed_torn(0);
        let db = Db::open_with_config(sim_config(&snapshot, alg).read_only(read_only))
            .unwrap_or_else(|e| panic!("{alg:?} read_only={read_only}: {e}"));
        db.verify().unwrap()
    })
}

/// Half of the page file cut away after a load whose records are all
/// still in the WAL: the open falls back to the older meta slot (the WAL
/// restores every record), and `verify` says so, naming the page file.
#[test]
fn a_fall_back_to_the_older_meta_slot_is_a_finding() {
    for alg in modes() {
        let vfs = SimVfs::new();
        // One flush: the older meta slot is the empty tree, and the WAL
        // still holds every record.
        let config = sim_config(&vfs, alg)
            .memtable_size(4 << 20)
            .wal_segment_size(4 << 20);
        let db = Db::open_with_config(config).unwrap();
        for i in 0..50u32 {
            db.put(format!("k{i:03}"), vec![i as u8; 4000]).unwrap();
        }
        db.flush().unwrap();
        let used = db.page_roles().unwrap().last().unwrap().0 + 1;
        assert!(used > 50);
        std::mem::forget(db);
        let data = dir().join("data.sealkv");
        let bytes = vfs.read_file(&data).unwrap();
        vfs.write_file(&data, &bytes[..used as usize / 2 * 4096]);
        for report in verify_both_ways(&vfs, alg) {
            assert_eq!(report.wal_records + report.entries, 50, "{alg:?}");
            let found = findings_naming(&report, "data.sealkv");
            assert!(
                found.iter().any(|w| w.contains("fell back")),
                "{alg:?}: {:?}",
                report.findings
            );
        }
    }
}

/// A byte flipped in the header of the newest WAL segment, which holds no
/// record: the open removes the segment (nothing in it), and `verify`
/// names it.
#[test]
fn a_header_only_segment_whose_header_fails_is_a_finding() {
    for alg in modes() {
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        db.put(b"a", b"1").unwrap();
        db.flush().unwrap();
        std::mem::forget(db);
        let mut segs: Vec<_> = vfs
            .files()
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        segs.sort();
        let newest = segs.pop().unwrap();
        let mut bytes = vfs.read_file(&newest).unwrap();
        assert_eq!(bytes.len(), 128, "the newest segment holds only its header");
        bytes[40] ^= 0x01;
        vfs.write_file(&newest, &bytes);
        let name = newest.file_name().unwrap().to_string_lossy().into_owned();
        for report in verify_both_ways(&vfs, alg) {
            let found = findings_naming(&report, &name);
            assert!(
                found.iter().any(|w| w.contains("header")),
                "{alg:?}: {:?}",
                report.findings
            );
        }
    }
}

/// After a re-encryption every free page is recorded as zeroed; one that
/// holds bytes again (and no page sealed for its slot by a later commit)
/// is a finding naming the page.
#[test]
fn a_zeroed_free_page_that_is_not_zero_is_a_finding() {
    for alg in EncryptionAlgorithm::ALL {
        let alg = Some(alg);
        let vfs = SimVfs::new();
        let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
        for i in 0..400u32 {
            db.put(format!("k{i:04}"), vec![i as u8; 200]).unwrap();
        }
        db.flush().unwrap();
        db.rotate_data_key().unwrap();
        let report = db.reencrypt(&mut |_| ControlFlow::Continue(())).unwrap();
        assert!(report.pages_zeroed > 0);
        let free: Vec<u64> = db
            .page_roles()
            .unwrap()
            .into_iter()
            .filter(|(_, r)| *r == "free")
            .map(|(p, _)| p)
            .collect();
        db.close().unwrap();
        let data = dir().join("data.sealkv");
        let mut bytes = vfs.read_file(&data).unwrap();
        // A page the pass zeroed (the commits after it free a few pages
        // they do not zero).
        let page = *free
            .iter()
            .find(|p| bytes[**p as usize * 4096..][..4096].iter().all(|&b| b == 0))
            .expect("zeroed free pages after re-encryption");
        let at = page as usize * 4096;
        bytes[at + 100..at + 200].fill(0x5A);
        vfs.write_file(&data, &bytes);
        for report in verify_both_ways(&vfs, alg) {
            let found = findings_naming(&report, "data.sealkv");
            assert!(
                found
                    .iter()
                    .any(|w| w.contains(&format!("page {page}")) && w.contains("zero")),
                "{alg:?}: {:?}",
                report.findings
            );
        }
    }
}
