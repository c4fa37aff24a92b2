//! The peers run every workload, hold exactly the records sealkv holds,
//! fail every check on a wrong value, and name themselves and their files
//! in their errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::bench::engine::Open;
use crate::bench::records::Model;
use crate::bench::tests::{
    assert_measured, dump, every_check_fails_on_a_wrong_value, expected, target,
};
use crate::bench::workload::{self, Measure, Workload};

#[test]
fn each_peer_runs_its_workloads_and_holds_the_records_sealkv_holds() {
    let tmp = tempfile::tempdir().unwrap();
    // 1,234 records: a batch of 1,000 and a partial one.
    let shape = Shape {
        records: 1_234,
        value_len: 100,
    };
    let sealkv = target(tmp.path(), 1);
    let mut sealkv_model = Model::default();
    for w in Workload::ALL
        .into_iter()
        .filter(|w| w.peers_run() && !w.is_people())
    {
        workload::run(w, &sealkv, &mut sealkv_model, shape).unwrap();
    }
    let sealed = dump(&sealkv);
    assert_eq!(sealed, expected(&sealkv_model, shape.value_len));
    for peer in all(tmp.path(), shape) {
        let mut model = Model::default();
        for w in Workload::ALL
            .into_iter()
            .filter(|w| w.runs_on(peer.as_ref(), true) && !w.is_people())
        {
            match workload::run(w, peer.as_ref(), &mut model, shape) {
                Ok(Measure::Throughput { ops, .. }) => assert!(ops > 0),
                Ok(Measure::Latency(d)) => assert!(w.is_latency() && !d.is_zero()),
                Err(e) => panic!("{} {w:?}: {e}", peer.name()),
            }
            assert_eq!(peer.take_given_up(), 0);
        }
        assert_eq!(dump(peer.as_ref()), sealed, "{}", peer.name());
        assert!(peer.dir().starts_with(tmp.path()));
        // The collections workloads, on the peers that have a table for
        // them: SQLite.
        assert_eq!(peer.runs_people(), peer.name() == "SQLite");
        for w in Workload::ALL.into_iter().filter(|w| w.is_people()) {
            if !w.runs_on(peer.as_ref(), true) {
                continue;
            }
            let m = workload::run(w, peer.as_ref(), &mut model, shape)
                .unwrap_or_else(|e| panic!("{} {w:?}: {e}", peer.name()));
            assert_measured(w, m);
        }
    }
}

#[test]
fn each_peer_fails_every_check_on_a_wrong_value() {
    let tmp = tempfile::tempdir().unwrap();
    for peer in all(
        tmp.path(),
        Shape {
            records: 1,
            value_len: 1,
        },
    ) {
        every_check_fails_on_a_wrong_value(peer.as_ref());
    }
}

#[test]
fn an_engine_error_names_the_engine_and_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    for peer in all(
        tmp.path(),
        Shape {
            records: 5,
            value_len: 5,
        },
    ) {
        // No fill: there is no database to open.
        match peer.session(Open::Existing, &mut |_| Ok(())) {
            Err(CliError::Peer {
                engine,
                path,
                message,
            }) => {
                assert_eq!(engine, peer.name());
                assert!(path.starts_with(peer.dir()), "{}", path.display());
                assert!(!message.is_empty());
            }
            other => panic!("{}: {other:?}", peer.name()),
        }
    }
    // A SQLite file that is not a database.
    let s = sqlite::Sqlite::new(tmp.path().join("junk"));
    std::fs::create_dir_all(tmp.path().join("junk")).unwrap();
    std::fs::write(s.path(), vec![0x5a; 8192]).unwrap();
    let e = s.session(Open::Existing, &mut |_| Ok(())).unwrap_err();
    assert!(
        matches!(
            e,
            CliError::Peer {
                engine: "SQLite",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("SQLite at "), "{e}");
}
