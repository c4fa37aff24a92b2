//! Nothing readable reaches the disk when sealing.

use sealkv_core_wal::Batch;
use sealkv_testkit::{Canaries, read_sim_tree, scan_for_plaintext};

use crate::*;

#[test]
fn sealed_segments_hold_no_plaintext_and_plaintext_ones_do() {
    let canaries = Canaries::new(16);
    for prot in PROTECTIONS {
        let mut opts = options(prot);
        opts.segment_size = 2048;
        let (s, v) = sim();
        let (wal, _, _) = open(&v, &opts).unwrap();
        for i in 0..canaries.len() {
            let mut b = Batch::new();
            b.put(canaries.key(i), canaries.value(i))
                .delete(canaries.key(i));
            wal.append(&b).unwrap();
            if i == 7 {
                wal.roll().unwrap();
            }
        }
        wal.close().unwrap();
        let leaks = scan_for_plaintext(&read_sim_tree(&s, &dir()), &canaries);
        if prot.is_some() {
            assert!(leaks.is_empty(), "{prot:?}: {leaks:?}");
        } else {
            // The scan can fail: plaintext mode leaks by design.
            assert!(leaks.len() >= canaries.len());
        }
    }
}

#[test]
fn debug_output_shows_no_record_bytes() {
    let canaries = Canaries::new(2);
    let (_s, v) = sim();
    let (wal, _, _) = open(&v, &options(None)).unwrap();
    let mut b = Batch::new();
    b.put(canaries.key(0), canaries.value(0));
    assert!(!format!("{b:?}").contains("CANARY"));
    wal.append(&b).unwrap();
    wal.append(&b).unwrap();
    let shown = format!("{wal:?}");
    assert!(shown.contains("next_seq: 3"), "{shown}");
    assert!(
        !shown.contains("CANARY") && !shown.contains("67, 65, 78"),
        "{shown}"
    );
}
