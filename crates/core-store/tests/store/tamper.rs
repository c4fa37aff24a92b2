//! Tampering: flipped bytes in every page kind, swapped, moved and stale
//! pages, pages of another database under the same key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sealkv_core_store::{PageRole, Store, StoreError};
use sealkv_crypto_envelope::DbId;
use sealkv_fileio::{FaultPlan, FaultyVfs, OpKind, SimVfs, Vfs};
use sealkv_testkit::hook::{FileEvent, HookVfs};
use sealkv_testkit::proof::Tally;

use crate::common::*;

const PS: usize = 4096;

/// A store with a 3-level tree, a large value, and some history.
fn populated(sim: &SimVfs) -> Store {
    let store = create(sim, Some(keyring()));
    for g in 0..3u32 {
        let mut w = store.write().unwrap();
        for i in 0..3000u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.put(b"big", &vec![g as u8; 20_000]).unwrap();
        w.commit().unwrap();
    }
    store
}

/// The first reachable page whose clear header says `kind`.
fn page_of_kind(store: &Store, kind: u8) -> u64 {
    let r = store.read();
    r.pages()
        .unwrap()
        .into_iter()
        .filter(|(_, role)| matches!(role, PageRole::Tree | PageRole::Overflow))
        .map(|(p, _)| p)
        .find(|&p| r.raw_page(p).unwrap()[0] == kind)
        .unwrap()
}

/// Reads everything; returns the first error.
fn scan(store: &Store) -> Option<StoreError> {
    let r = store.read();
    r.iter().find_map(Result::err)
}

fn corrupt_page(e: Option<StoreError>) -> u64 {
    match e {
        Some(StoreError::Corruption { page, .. }) => page,
        other => panic!("expected Corruption, got {other:?}"),
    }
}

#[test]
fn flipped_byte_in_each_tree_page_kind_names_the_page() {
    let mut t = Tally::new("tamper-store", "flipped_byte_in_each_tree_page_kind");
    for (kind, name) in [(2u8, "branch"), (3, "leaf"), (4, "overflow")] {
        let sim = SimVfs::new();
        let store = populated(&sim);
        let root_txn = store.read().txn();
        let page = page_of_kind(&store, kind);
        drop(store);
        flip(&sim, &path(), page as usize * PS + 100);
        let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim.clone());
        let (store, report) = Store::open(v, &path(), opts(Some(keyring()))).unwrap();
        if report.txn != root_txn {
            // The root itself: the newest meta is refused, naming the page,
            // and the older meta (whose tree is intact) is taken.
            let why = report.fell_back.unwrap();
            assert!(why.contains(&format!("page {page}")), "{name}: {why}");
            t.case("detected");
            continue;
        }
        assert_eq!(corrupt_page(scan(&store)), page, "{name}");
        let report = store.verify().unwrap();
        assert!(
            report.problems.iter().any(|p| p.page == page),
            "{name}: {:?}",
            report.problems
        );
        t.case("detected");
        // A flip in the clear header is caught too (it is in the AAD).
        drop(store);
        flip(&sim, &path(), page as usize * PS + 100);
        flip(&sim, &path(), page as usize * PS + 9);
        let store = open(&sim, Some(keyring()));
        assert_eq!(corrupt_page(scan(&store)), page, "{name} header");
        t.case("detected");
    }
    t.print();
}

#[test]
fn flipped_header_and_meta_pages() {
    let mut t = Tally::new("tamper-store", "flipped_header_and_meta_pages");
    let sim = SimVfs::new();
    drop(populated(&sim));
    let clean = sim.read_file(&path()).unwrap();
    let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim.clone());

    flip(&sim, &path(), 200);
    match Store::open(v.clone(), &path(), opts(Some(keyring()))) {
        Err(StoreError::Corruption { page: 0, .. }) => t.case("detected"),
        other => panic!("header flip: {other:?}"),
    }

    // The newest meta (txn 3, slot 2) flipped: the older one is taken and
    // the report names the bad slot.
    sim.write_file(&path(), &clean);
    flip(&sim, &path(), 2 * PS + 70);
    let (s, report) = Store::open(v.clone(), &path(), opts(Some(keyring()))).unwrap();
    assert_eq!(report.txn, 2);
    assert!(report.other_slot.unwrap().contains("page 2"));
    t.case("detected");
    drop(s);

    // Both metas flipped: refused, naming a meta page.
    sim.write_file(&path(), &clean);
    flip(&sim, &path(), PS + 70);
    flip(&sim, &path(), 2 * PS + 70);
    match Store::open(v, &path(), opts(Some(keyring()))) {
        Err(StoreError::Corruption { page: 1 | 2, .. }) => t.case("detected"),
        other => panic!("both metas: {other:?}"),
    }
    t.print();
}

#[test]
fn a_damaged_fallback_slot_is_reported_while_a_write_transaction_is_open() {
    let sim = SimVfs::new();
    let store = populated(&sim);
    // txn 3 lives in slot 2; slot 1 holds txn 2, what an open falls back to.
    assert_eq!(store.read().txn(), 3);
    assert!(store.verify().unwrap().is_clean());
    flip(&sim, &path(), PS + 70);
    let w = store.write().unwrap();
    let report = store.verify().unwrap();
    assert_eq!(
        report.problems.iter().map(|p| p.page).collect::<Vec<_>>(),
        vec![1],
        "{report:?}"
    );
    let mut t = Tally::new("tamper-store", "a_damaged_fallback_slot");
    t.case("detected");
    t.print();
    // Committing rewrites the slot: clean again.
    drop(w);
    let mut w = store.write().unwrap();
    w.put(b"k", b"v").unwrap();
    w.commit().unwrap();
    assert!(store.verify().unwrap().is_clean());
}

#[test]
fn swapped_and_moved_pages_are_detected() {
    let sim = SimVfs::new();
    let store = populated(&sim);
    let r = store.read();
    let leaves: Vec<u64> = r
        .pages()
        .unwrap()
        .into_iter()
        .filter(|(p, role)| *role == PageRole::Tree && r.raw_page(*p).unwrap()[0] == 3)
        .map(|(p, _)| p)
        .collect();
    drop(r);
    drop(store);
    let (a, b) = (leaves[0], leaves[1]);
    let clean = sim.read_file(&path()).unwrap();

    let mut f = clean.clone();
    let pa = f[a as usize * PS..][..PS].to_vec();
    let pb = f[b as usize * PS..][..PS].to_vec();
    f[a as usize * PS..][..PS].copy_from_slice(&pb);
    f[b as usize * PS..][..PS].copy_from_slice(&pa);
    sim.write_file(&path(), &f);
    let store = open(&sim, Some(keyring()));
    let bad = corrupt_page(scan(&store));
    assert!(bad == a || bad == b);
    let mut t = Tally::new("tamper-store", "swapped_and_moved_pages");
    t.case("detected");
    drop(store);

    // Moving a page: a copy of leaf a written over leaf b.
    let mut f = clean.clone();
    f[b as usize * PS..][..PS].copy_from_slice(&pa);
    sim.write_file(&path(), &f);
    let store = open(&sim, Some(keyring()));
    assert_eq!(corrupt_page(scan(&store)), b);
    t.case("detected");
    t.print();
}

#[test]
fn older_version_of_a_page_put_back_is_a_rollback() {
    let sim = SimVfs::new();
    let store = create(&sim, Some(keyring()));
    // Remember every reachable page's bytes at every commit.
    let mut seen: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    for g in 0..12u32 {
        let mut w = store.write().unwrap();
        for i in (0..2000u32).step_by(1 + g as usize % 3) {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.commit().unwrap();
        let r = store.read();
        for (p, role) in r.pages().unwrap() {
            if role == PageRole::Tree {
                seen.entry(p).or_default().push(r.raw_page(p).unwrap());
            }
        }
    }
    let r = store.read();
    let current: Vec<(u64, Vec<u8>)> = r
        .pages()
        .unwrap()
        .into_iter()
        .filter(|(_, role)| *role == PageRole::Tree)
        .map(|(p, _)| (p, r.raw_page(p).unwrap()))
        .collect();
    drop(r);
    drop(store);
    let (page, old) = current
        .iter()
        .find_map(|(p, now)| seen[p].iter().find(|o| *o != now).map(|o| (*p, o.clone())))
        .expect("some page number was reused with new contents");
    let mut f = sim.read_file(&path()).unwrap();
    f[page as usize * PS..][..PS].copy_from_slice(&old);
    sim.write_file(&path(), &f);
    let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim.clone());
    match Store::open(v, &path(), opts(Some(keyring()))) {
        Ok((store, _)) => match scan(&store) {
            Some(StoreError::Rollback { page: p }) => {
                assert_eq!(p, page);
                let mut t = Tally::new("tamper-store", "older_version_of_a_page");
                t.case("detected");
                t.print();
            }
            other => panic!("expected Rollback, got {other:?}"),
        },
        // The root itself was put back: the meta slot rejects it.
        Err(e) => panic!("open failed: {e:?}"),
    }
}

#[test]
fn pages_of_two_databases_under_one_key_do_not_mix() {
    let sim_a = SimVfs::new();
    let sim_b = SimVfs::new();
    let ka = keyring_with(DbId([1; 16]), [9; 32]);
    let kb = keyring_with(DbId([2; 16]), [9; 32]);
    for (sim, k) in [(&sim_a, &ka), (&sim_b, &kb)] {
        let s = create(sim, Some(k.clone()));
        let mut w = s.write().unwrap();
        for i in 0..3000u32 {
            w.put(&key(i), &val(i, 0)).unwrap();
        }
        w.commit().unwrap();
    }
    let s = open(&sim_a, Some(ka.clone()));
    let leaf = page_of_kind(&s, 3);
    drop(s);
    let fb = sim_b.read_file(&path()).unwrap();
    let mut fa = sim_a.read_file(&path()).unwrap();
    fa[leaf as usize * PS..][..PS].copy_from_slice(&fb[leaf as usize * PS..][..PS]);
    sim_a.write_file(&path(), &fa);
    let s = open(&sim_a, Some(ka));
    assert_eq!(corrupt_page(scan(&s)), leaf);
    let mut t = Tally::new("tamper-store", "pages_of_two_databases");
    t.case("detected");
    // And b's whole file is refused by a's keyring.
    let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim_b.clone());
    let err =
        Store::open(v, &path(), opts(Some(keyring_with(DbId([1; 16]), [9; 32])))).unwrap_err();
    assert!(matches!(err, StoreError::WrongDatabase));
    t.case("detected");
    t.print();
}

/// Stops one named thread before its `at`-th file operation of the kinds
/// `counts` picks, until the test lets it go, and says when it got there.
struct Pause {
    thread: &'static str,
    counts: fn(&FileEvent<'_>) -> bool,
    state: Mutex<PauseState>,
    cv: Condvar,
}

#[derive(Default)]
struct PauseState {
    seen: u64,
    at: u64,
    paused: bool,
    go: bool,
}

impl Pause {
    fn new(thread: &'static str, counts: fn(&FileEvent<'_>) -> bool, at: u64) -> Arc<Self> {
        Arc::new(Pause {
            thread,
            counts,
            state: Mutex::new(PauseState {
                at,
                ..PauseState::default()
            }),
            cv: Condvar::new(),
        })
    }

    /// The hook: counts the operation, and stops there if it is the one.
    fn point(&self, e: &FileEvent<'_>) {
        if std::thread::current().name() != Some(self.thread) || !(self.counts)(e) {
            return;
        }
        let mut st = self.state.lock().unwrap();
        st.seen += 1;
        if st.seen == st.at {
            st.paused = true;
            self.cv.notify_all();
            st = self.cv.wait_while(st, |s| !s.go).unwrap();
            st.paused = false;
        }
    }

    fn seen(&self) -> u64 {
        self.state.lock().unwrap().seen
    }

    /// Waits (a minute at most) until the thread stopped.
    fn wait_paused(&self) {
        let st = self.state.lock().unwrap();
        let (st, _) = self
            .cv
            .wait_timeout_while(st, Duration::from_secs(60), |s| !s.paused)
            .unwrap();
        assert!(
            st.paused,
            "{} never reached operation {}",
            self.thread, st.at
        );
    }

    fn is_paused(&self) -> bool {
        self.state.lock().unwrap().paused
    }

    fn release(&self) {
        self.state.lock().unwrap().go = true;
        self.cv.notify_all();
    }
}

fn is_read(e: &FileEvent<'_>) -> bool {
    matches!(e, FileEvent::Read { .. })
}

fn is_change(e: &FileEvent<'_>) -> bool {
    matches!(
        e,
        FileEvent::Write { .. } | FileEvent::Sync { .. } | FileEvent::SetLen { .. }
    )
}

/// The populated store on a disk whose operations pass `pauses`.
fn populated_with(pauses: Vec<Arc<Pause>>) -> Store {
    let sim = SimVfs::new();
    let hooked = HookVfs::new(Arc::new(sim.clone()), move |e| {
        for p in &pauses {
            p.point(&e);
        }
        Ok(())
    });
    let v: Arc<dyn Vfs> = Arc::new(hooked);
    v.create_dir_all(Path::new("/db")).unwrap();
    let store = Store::create(v, &path(), opts(Some(keyring()))).unwrap().0;
    for g in 0..3u32 {
        let mut w = store.write().unwrap();
        for i in 0..3000u32 {
            w.put(&key(i), &val(i, g)).unwrap();
        }
        w.put(b"big", &vec![g as u8; 20_000]).unwrap();
        w.commit().unwrap();
    }
    store
}

/// A commit that rewrites a third of the keys (reusing free pages).
fn commit_g(store: &Store, g: u32) {
    let mut w = store.write().unwrap();
    for i in (0..3000u32).step_by(3) {
        w.put(&key(i), &val(i, g)).unwrap();
    }
    w.commit().unwrap();
}

fn on_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .unwrap()
}

/// `Store::verify` used directly while another thread commits: an intact
/// store is always reported clean (the other slot is checked under the
/// writer state; free pages reused since the snapshot count as
/// overwritten, not damaged). Both ways round, at exact points:
/// - a commit stopped before each of its writes, fsyncs and length
///   changes while a verify walks the whole file (it is let go only when
///   verify is at its last page read);
/// - verify stopped at a page read (first, middle, last) while two whole
///   commits are published.
#[test]
fn verify_while_another_thread_commits_reports_no_damage() {
    // Dry runs: the commit's operations, verify's reads (its walk, then
    // the other meta slot).
    let (commit_ops, verify_reads) = {
        let writer = Pause::new("writer", is_change, u64::MAX);
        let verifier = Pause::new("verify", is_read, u64::MAX);
        let store = populated_with(vec![writer.clone(), verifier.clone()]);
        let s = store.clone();
        on_thread("writer", move || commit_g(&s, 3)).join().unwrap();
        let s = store.clone();
        let r = on_thread("verify", move || s.verify().unwrap())
            .join()
            .unwrap();
        assert!(r.is_clean(), "{r:?}");
        (writer.seen(), verifier.seen())
    };
    assert!(
        commit_ops >= 4 && verify_reads > 10,
        "{commit_ops} {verify_reads}"
    );
    let walk_reads = verify_reads - 1;

    let mut overlapped = 0;
    for k in 1..=commit_ops {
        let writer = Pause::new("writer", is_change, k);
        let verifier = Pause::new("verify", is_read, walk_reads);
        let store = populated_with(vec![writer.clone(), verifier.clone()]);
        let s = store.clone();
        let commit = on_thread("writer", move || commit_g(&s, 3));
        writer.wait_paused();
        let s = store.clone();
        let verify = on_thread("verify", move || s.verify().unwrap());
        verifier.wait_paused();
        // All but the last page read of verify's walk happened inside the
        // commit.
        assert!(writer.is_paused(), "commit op {k}: the writer went on");
        overlapped += 1;
        verifier.release();
        writer.release();
        commit.join().unwrap();
        let report = verify.join().unwrap();
        assert!(report.is_clean(), "commit op {k}: {:?}", report.problems);
        assert!(store.verify().unwrap().is_clean());
    }
    for j in [1, 2, walk_reads / 2, walk_reads] {
        let verifier = Pause::new("verify", is_read, j);
        let store = populated_with(vec![verifier.clone()]);
        let s = store.clone();
        let verify = on_thread("verify", move || s.verify().unwrap());
        verifier.wait_paused();
        let before = store.read().txn();
        commit_g(&store, 3);
        commit_g(&store, 4);
        assert_eq!(store.read().txn(), before + 2);
        assert!(verifier.is_paused(), "verify read {j}: it went on");
        overlapped += 1;
        verifier.release();
        let report = verify.join().unwrap();
        assert!(report.is_clean(), "verify read {j}: {:?}", report.problems);
    }
    assert_eq!(overlapped, commit_ops + 4);
    let mut t = Tally::new("tamper-store", "verify_while_another_thread_commits");
    t.add("cases", overlapped);
    t.add("clean", overlapped);
    t.print();
}

/// Free pages recorded as zeroed must be zero (or hold a page sealed for
/// that slot by a later commit that never completed, which the engine's
/// crash tests produce); bytes put there are a problem naming the page. And the second meta slot of a store that
/// never committed must be all zeros.
#[test]
fn a_zeroed_free_page_that_is_not_zero_and_a_written_unused_slot_are_reported() {
    let sim = SimVfs::new();
    let store = populated(&sim);
    for _ in 0..3 {
        let mut w = store.write().unwrap();
        w.zero_free_pages_on_commit();
        w.commit().unwrap();
    }
    assert!(store.verify().unwrap().is_clean());
    let r = store.read();
    let zeroed: Vec<u64> = r
        .pages()
        .unwrap()
        .into_iter()
        .filter(|(p, role)| {
            *role == PageRole::Free && r.raw_page(*p).unwrap().iter().all(|&b| b == 0)
        })
        .map(|(p, _)| p)
        .collect();
    drop(r);
    assert!(zeroed.len() > 2);
    let mut f = sim.read_file(&path()).unwrap();
    let junk = zeroed[0] as usize * PS;
    f[junk + 200..junk + 260].fill(0xA5);
    sim.write_file(&path(), &f);
    let report = store.verify().unwrap();
    assert_eq!(
        report.problems.iter().map(|p| p.page).collect::<Vec<_>>(),
        vec![zeroed[0]],
        "{report:?}"
    );
    assert!(report.problems[0].what.contains("zeroed"));
    drop(store);

    let sim = SimVfs::new();
    drop(create(&sim, Some(keyring())));
    let store = open(&sim, Some(keyring()));
    assert!(store.verify().unwrap().is_clean());
    flip(&sim, &path(), 2 * PS + 100);
    let report = store.verify().unwrap();
    assert_eq!(
        report.problems.iter().map(|p| p.page).collect::<Vec<_>>(),
        vec![2],
        "{report:?}"
    );
}

/// A commit that dies after sealing pages into zeroed free slots leaves them
/// non-zero; the first commit after the reopen takes the dead one's
/// transaction number. Those pages are still sealed since the slot was
/// freed, so `verify` must not call them damage.
#[test]
fn pages_a_dead_commit_sealed_into_zeroed_slots_are_not_damage() {
    let sim = SimVfs::new();
    let store = populated(&sim);
    for _ in 0..3 {
        let mut w = store.write().unwrap();
        w.zero_free_pages_on_commit();
        w.commit().unwrap();
    }
    let zeroed = zeroed_free_pages(&store);
    assert!(zeroed.len() > 2);
    drop(store);

    let fv = std::sync::Arc::new(FaultyVfs::over_sim(&sim));
    let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = fv.clone();
    let store = Store::open(v, &path(), opts(Some(keyring()))).unwrap().0;
    // The commit's second fsync is the meta page's: the pages are durable,
    // the meta page is not.
    fv.arm(FaultPlan::from(OpKind::Sync, 2));
    let mut w = store.write().unwrap();
    for i in 0..3000u32 {
        w.put(&key(i), &val(i, 9)).unwrap();
    }
    assert!(w.commit().is_err());
    drop(store);
    sim.crash();

    let store = open(&sim, Some(keyring()));
    let dirty: Vec<u64> = {
        let r = store.read();
        zeroed
            .iter()
            .copied()
            .filter(|&p| r.raw_page(p).unwrap().iter().any(|&b| b != 0))
            .collect()
    };
    assert!(!dirty.is_empty(), "the dead commit wrote no zeroed slot");
    // An empty commit: it reuses none of them and takes the dead one's
    // transaction number.
    store.write().unwrap().commit().unwrap();
    assert!(
        !still_free(&store, &dirty).is_empty(),
        "the empty commit reused every slot"
    );
    let report = store.verify().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// Free pages recorded as zeroed that are zero now.
fn zeroed_free_pages(store: &Store) -> Vec<u64> {
    let r = store.read();
    r.pages()
        .unwrap()
        .into_iter()
        .filter(|(p, role)| {
            *role == PageRole::Free && r.raw_page(*p).unwrap().iter().all(|&b| b == 0)
        })
        .map(|(p, _)| p)
        .collect()
}

/// Which of `pages` are still free.
fn still_free(store: &Store, pages: &[u64]) -> Vec<u64> {
    let r = store.read();
    r.pages()
        .unwrap()
        .into_iter()
        .filter(|(p, role)| *role == PageRole::Free && pages.contains(p))
        .map(|(p, _)| p)
        .collect()
}

/// What one tampered store came to, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// `Corruption` at open or on read.
    Corruption,
    /// `Rollback` on read.
    Rollback,
    /// The open stepped around a meta slot that did not check out: took
    /// the other one (its report says why; the engine's `verify` reports
    /// it).
    FellBack,
    /// Read back right; `verify` named a problem.
    Problem,
    /// Nothing read changed, nothing reported.
    NoEffect,
    /// The whole store reads as an earlier commit, consistently: what an
    /// older meta slot put back gives. The store alone cannot tell (the
    /// engine's WAL continuity check and freshness anchor do).
    OlderState,
    /// A read returned something never written. Never allowed.
    Wrong,
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn classify(
    sim: &SimVfs,
    ring: Option<std::sync::Arc<sealkv_crypto_envelope::Keyring>>,
    want: &Pairs,
    earlier: &[Pairs],
) -> Kind {
    let v: std::sync::Arc<dyn sealkv_fileio::Vfs> = std::sync::Arc::new(sim.clone());
    let (store, report) = match Store::open(v, &path(), opts(ring)) {
        Ok(s) => s,
        Err(StoreError::Corruption { .. }) => return Kind::Corruption,
        Err(e) => panic!("unexpected kind at open: {e:?}"),
    };
    if report.fell_back.is_some() || report.other_slot.is_some() {
        return Kind::FellBack;
    }
    let r = store.read();
    let got: Result<Vec<_>, _> = r
        .range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        .collect();
    match got {
        Ok(got) if got == *want => {}
        Ok(got) if earlier.contains(&got) => return Kind::OlderState,
        Ok(_) => return Kind::Wrong,
        Err(StoreError::Corruption { .. }) => return Kind::Corruption,
        Err(StoreError::Rollback { .. }) => return Kind::Rollback,
        Err(e) => panic!("unexpected kind on read: {e:?}"),
    }
    if store.verify().unwrap().is_clean() {
        Kind::NoEffect
    } else {
        Kind::Problem
    }
}

/// Every page of a store (sealed and plaintext) with a flipped byte in its
/// clear header, its body and its tag, and each page put back from an
/// older version of the file: the kind of every outcome is asserted per
/// page role (the counts are in docs/SECURITY.md; `--nocapture` prints
/// them).
#[test]
fn tamper_kinds_per_page_role() {
    use std::collections::BTreeMap;
    for sealed in [false, true] {
        let ring = || sealed.then(keyring);
        let sim = SimVfs::new();
        let store = create(&sim, ring());
        let mut older = Vec::new();
        let mut earlier = vec![Vec::new()];
        for g in 0..4u32 {
            let mut w = store.write().unwrap();
            for i in (0..600u32).step_by(1 + g as usize) {
                w.put(&key(i), &val(i, g)).unwrap();
            }
            w.put(b"big", &vec![g as u8; 9_000]).unwrap();
            w.commit().unwrap();
            earlier.push(all(&store.read()));
            if g == 1 {
                older = sim.read_file(&path()).unwrap();
            }
        }
        let page_count = store.stats().page_count;
        let r = store.read();
        let want: Vec<_> = all(&r);
        let roles: BTreeMap<u64, PageRole> = r.pages().unwrap().into_iter().collect();
        let kind_byte = |p: u64| r.raw_page(p).unwrap()[0];
        let role = |p: u64| -> &'static str {
            match (p, roles.get(&p)) {
                (0, _) => "header",
                (1 | 2, _) => "meta",
                (_, Some(PageRole::Tree)) if kind_byte(p) == 2 => "branch",
                (_, Some(PageRole::Tree)) => "leaf",
                (_, Some(PageRole::Overflow)) => "overflow",
                (_, Some(PageRole::FreeList)) => "free list",
                (_, Some(PageRole::Free)) => "free",
                _ => "other",
            }
        };
        let names: Vec<(u64, &'static str)> = (0..page_count).map(|p| (p, role(p))).collect();
        drop(r);
        drop(store);
        let good = sim.read_file(&path()).unwrap();
        let mut counts: BTreeMap<(&str, &str, Kind), usize> = BTreeMap::new();
        let mut run = |name: &'static str, case: &'static str, bytes: Vec<u8>| {
            let s = SimVfs::new();
            s.write_file(&path(), &bytes);
            let k = classify(&s, ring(), &want, &earlier);
            *counts.entry((name, case, k)).or_insert(0) += 1;
        };
        for &(p, name) in &names {
            let at = p as usize * PS;
            for (case, off) in [
                ("header byte", 9),
                ("body byte", PS / 2),
                ("tag byte", PS - 3),
            ] {
                let mut b = good.clone();
                b[at + off] ^= 0x10;
                run(name, case, b);
            }
            if let Some(old) = older.get(at..at + PS)
                && old != &good[at..at + PS]
                && old.iter().any(|&x| x != 0)
            {
                let mut b = good.clone();
                b[at..at + PS].copy_from_slice(old);
                run(name, "older version", b);
            }
        }
        let mode = if sealed { "sealed" } else { "plaintext" };
        let mut t = Tally::new("tamper-store", format!("kinds_per_page_role-{mode}"));
        let mut problems = Vec::new();
        for ((name, case, k), n) in &counts {
            println!("{mode} | {name} | {case} | {k:?} | {n}");
            let (detected, key) = match k {
                Kind::Corruption => (true, "corruption"),
                Kind::Rollback => (true, "rollback"),
                Kind::FellBack => (true, "fell_back"),
                Kind::Problem => (true, "verify_problem"),
                Kind::NoEffect => (false, "no_effect"),
                Kind::OlderState => (false, "older_state"),
                Kind::Wrong => (false, "wrong"),
            };
            t.add("cases", *n as u64);
            if detected {
                t.add("detected", *n as u64);
            }
            t.add(key, *n as u64);
            let ok = match (*name, *case, *k) {
                (_, _, Kind::Wrong) => false,
                // The header is read before any page; a meta slot that
                // does not check out is stepped around (the other opens).
                ("header", _, k) => k == Kind::Corruption,
                ("meta", "older version", k) => {
                    matches!(
                        k,
                        Kind::FellBack | Kind::NoEffect | Kind::Problem | Kind::OlderState
                    )
                }
                ("meta", _, k) => k == Kind::FellBack,
                // The root and the free list are read at open: a fall-back.
                ("branch" | "leaf" | "overflow", "older version", k) => {
                    matches!(k, Kind::Rollback | Kind::FellBack)
                }
                ("branch" | "leaf" | "overflow", _, k) => {
                    matches!(k, Kind::Corruption | Kind::FellBack)
                }
                ("free list", _, k) => k == Kind::FellBack,
                // Freed by the last commit: must hold its version; freed
                // earlier: may have been rewritten by a commit that died.
                ("free", _, k) => matches!(k, Kind::Problem | Kind::NoEffect),
                _ => false,
            };
            if !ok {
                problems.push(format!("{name} / {case}: {n} x {k:?}"));
            }
        }
        t.print();
        assert!(problems.is_empty(), "sealed={sealed}: {problems:#?}");
    }
}
