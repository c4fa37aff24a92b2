//! The tamper matrix: for each kind of file and page, flip bytes,
//! cut, swap pages, put back an older sealed copy, splice from another
//! database under the same key — then open, read everything and verify.
//!
//! The outcome of every case is one of the kinds of [`Outcome`]: the
//! error an open or a read answered (`Corruption`, `Rollback`, `WrongKey`,
//! another typed error), a `verify` finding, a torn WAL tail the open cut
//! and reported, a crash-like loss at the log's end (the documented limit
//! of a cut at a record boundary), no effect (bytes never used), or wrong
//! data (never allowed). [`expected`] says, per file kind and tamper, which
//! kinds are allowed, and why; any other kind fails the test.
//!
//! The matrix runs twice: on the database as its writes left it, and on
//! one compacted (a range deleted, then `Db::compact`: live pages moved
//! into freed slots and resealed, the file cut), whose older copy is the
//! file just before the compaction, so the stale copies put back are the
//! pages the compaction moved away from.
//!
//! The counts go into `docs/SECURITY.md`; run with `--nocapture` to print
//! them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sealkv::crypto::EncryptionAlgorithm;
use sealkv::{Db, Error};
use sealkv_fileio::SimVfs;
use sealkv_testkit::read_sim_tree;

use crate::support::{dir, sim_config};

type Files = Vec<(String, Vec<u8>)>;
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PAGE: usize = 4096;

/// What one case came to, by kind: the error an open or a read answered,
/// or what `verify` or the open reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// `Error::Corruption` (open or read).
    Corruption,
    /// `Error::Rollback` (open or read).
    Rollback,
    /// `Error::WrongKey`: the key check of the registry failed.
    WrongKey,
    /// Another typed error (`EncryptedDatabase`, a layer's own error).
    OtherError,
    /// Everything read back right; `verify` named the damage.
    Finding,
    /// The open cut a torn WAL tail and said so (stats, a warning);
    /// nothing acknowledged was read wrong.
    TornTail,
    /// Records at the log's end are gone and nothing says so: the
    /// documented limit of a cut at a record boundary.
    CrashLike,
    /// Nothing read changed and nothing is reported: the bytes are never
    /// used.
    NoEffect,
    /// A read returned a value never written there. Never allowed.
    Wrong,
}

impl Outcome {
    const ALL: [Outcome; 9] = [
        Outcome::Corruption,
        Outcome::Rollback,
        Outcome::WrongKey,
        Outcome::OtherError,
        Outcome::Finding,
        Outcome::TornTail,
        Outcome::CrashLike,
        Outcome::NoEffect,
        Outcome::Wrong,
    ];

    fn of(e: &Error) -> Outcome {
        assert_typed(e);
        match e {
            Error::Corruption { .. } => Outcome::Corruption,
            Error::Rollback { .. } => Outcome::Rollback,
            Error::WrongKey => Outcome::WrongKey,
            _ => Outcome::OtherError,
        }
    }
}

struct Fixture {
    alg: Option<EncryptionAlgorithm>,
    good: Files,
    older: Files,
    other: Files,
    model: Model,
    /// Page number -> role ("tree", "overflow", "free-list", "free").
    roles: BTreeMap<u64, &'static str>,
}

/// The files under the database directory, named relative to it.
fn files_of(vfs: &SimVfs) -> Files {
    let root = format!("{}/", dir().display());
    read_sim_tree(vfs, &dir())
        .into_iter()
        .filter_map(|(n, b)| Some((n.strip_prefix(&root)?.to_string(), b)))
        .filter(|(n, _)| !n.ends_with("LOCK") && !n.ends_with(".lock"))
        .collect()
}

/// Builds a database with branches, leaves, overflow, free-list and free
/// pages, a WAL tail, and (sealed) two data keys; also an older copy of its
/// files. With `compacted`, a range of its keys is then deleted and the
/// database compacted, and the older copy is the one just before the
/// compaction.
fn build(
    alg: Option<EncryptionAlgorithm>,
    seed: u8,
    compacted: bool,
) -> (Files, Files, Model, Vec<(u64, &'static str)>) {
    let vfs = SimVfs::new();
    let db = Db::open_with_config(sim_config(&vfs, alg)).unwrap();
    let mut model = Model::new();
    let put = |db: &Db, model: &mut Model, i: u32, round: u8| {
        let key = format!("tamper/{i:05}").into_bytes();
        let len = if i.is_multiple_of(50) { 9000 } else { 60 };
        let value = vec![seed ^ round ^ (i as u8); len];
        db.put(&key, &value).unwrap();
        model.insert(key, value);
    };
    for i in 0..300 {
        put(&db, &mut model, i, 1);
    }
    db.flush().unwrap();
    let mut older = files_of(&vfs);
    for i in (0..100).chain(300..400) {
        put(&db, &mut model, i, 2);
    }
    db.flush().unwrap();
    // Two more commits over the same keys: pages freed by the ones before
    // are reused, so the older copy holds stale versions of live pages.
    for round in 3..5 {
        for i in (0..300).step_by(7) {
            put(&db, &mut model, i, round);
        }
        db.flush().unwrap();
    }
    if alg.is_some() {
        db.rotate_data_key().unwrap();
    }
    if compacted {
        let (lo, hi) = (b"tamper/00060".to_vec(), b"tamper/00330".to_vec());
        db.delete_range(lo.clone()..hi.clone()).unwrap();
        model.retain(|k, _| *k < lo || *k >= hi);
        db.flush().unwrap();
        // The older page file is the one just before the compaction (the
        // older registry stays the one from before the rotation).
        let before = files_of(&vfs);
        for (name, bytes) in &mut older {
            if let Some((_, b)) = before
                .iter()
                .find(|(n, _)| n == name && n.ends_with(".sealkv"))
            {
                *bytes = b.clone();
            }
        }
        let report = db.compact().unwrap();
        assert!(report.pages_moved > 0, "{report:?}");
        assert!(report.bytes_after < report.bytes_before, "{report:?}");
    }
    for i in 400..440 {
        put(&db, &mut model, i, 3);
    }
    let roles = db.page_roles().unwrap();
    // A process crash (the files as the OS holds them; every write was
    // acknowledged under SyncMode::Always).
    std::mem::forget(db);
    (files_of(&vfs), older, model, roles)
}

fn fixture(alg: Option<EncryptionAlgorithm>, compacted: bool) -> Fixture {
    let (good, older, model, roles) = build(alg, 0x11, compacted);
    let (other, _, _, _) = build(alg, 0x22, compacted);
    Fixture {
        alg,
        good,
        older,
        other,
        model,
        roles: roles.into_iter().collect(),
    }
}

/// Opens `files`, reads every key and the whole range, verifies; the
/// first error wins.
fn check(f: &Fixture, files: &Files) -> Outcome {
    let vfs = SimVfs::new();
    for (name, bytes) in files {
        vfs.write_file(&dir().join(name), bytes);
    }
    let db = match Db::open_with_config(sim_config(&vfs, f.alg)) {
        Ok(db) => db,
        Err(e) => return Outcome::of(&e),
    };
    // A torn WAL tail cut at open is reported (stats, and a warning).
    let torn = db.stats().unwrap().torn_tails_repaired > 0;
    let mut error = None;
    let mut missing = false;
    for (k, v) in &f.model {
        match db.get(k) {
            Ok(Some(got)) if &got == v => {}
            Ok(Some(_)) => return Outcome::Wrong,
            Ok(None) => missing = true,
            Err(e) => {
                error.get_or_insert(Outcome::of(&e));
            }
        }
    }
    match db
        .range::<&[u8]>(..)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(all) => {
            for (k, v) in &all {
                if f.model.get(k) != Some(v) {
                    return Outcome::Wrong;
                }
            }
        }
        Err(e) => {
            error.get_or_insert(Outcome::of(&e));
        }
    }
    if let Some(o) = error {
        return o;
    }
    match db.verify() {
        Ok(r) if !r.is_clean() => Outcome::Finding,
        Err(e) => Outcome::of(&e),
        Ok(_) if missing => Outcome::CrashLike,
        Ok(_) if torn => Outcome::TornTail,
        Ok(_) => Outcome::NoEffect,
    }
}

/// Damage must surface as the typed errors the docs promise.
fn assert_typed(e: &Error) {
    assert!(
        matches!(
            e,
            Error::Corruption { .. }
                | Error::Rollback { .. }
                | Error::WrongKey
                | Error::EncryptedDatabase
                | Error::PlaintextDatabase { .. }
                | Error::Wal(_)
                | Error::Store(_)
                | Error::Registry(_)
                | Error::Key(_)
                | Error::Crypto(_)
        ),
        "untyped or unexpected error for damage: {e:?}"
    );
}

fn with_file(files: &Files, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Files {
    let mut out = files.clone();
    if let Some((_, bytes)) = out.iter_mut().find(|(n, _)| n == name) {
        edit(bytes);
    }
    out
}

fn file<'a>(files: &'a Files, name: &str) -> &'a [u8] {
    &files.iter().find(|(n, _)| n == name).unwrap().1
}

fn names(files: &Files, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = files
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n.ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The kind of page `p` of the page file, for the matrix's rows.
fn page_kind(f: &Fixture, data: &[u8], p: u64) -> &'static str {
    match p {
        0 => "page-file header",
        1 | 2 => "meta page",
        _ => match f.roles.get(&p).copied() {
            Some("tree") => match data.get(p as usize * PAGE) {
                Some(2) => "branch page",
                _ => "leaf page",
            },
            Some("overflow") => "overflow page",
            Some("free-list") => "free-list page",
            Some("free") => "free page",
            _ => "space past the last page",
        },
    }
}

#[derive(Default)]
struct Matrix {
    /// (file kind, tamper) -> outcome -> count.
    cells: BTreeMap<(String, &'static str), BTreeMap<Outcome, usize>>,
}

impl Matrix {
    fn add(&mut self, kind: &str, case: &'static str, o: Outcome) {
        *self
            .cells
            .entry((kind.to_string(), case))
            .or_default()
            .entry(o)
            .or_insert(0) += 1;
    }
}

fn run_matrix(f: &Fixture) -> Matrix {
    let mut m = Matrix::default();
    let data_name = "data.sealkv".to_string();
    let data = file(&f.good, &data_name).to_vec();
    let pages = (data.len() / PAGE) as u64;

    // Page file: three flips per page (header, body, tag).
    for p in 0..pages {
        let kind = page_kind(f, &data, p);
        for at in [5usize, PAGE / 2 + 3, PAGE - 3] {
            let pos = p as usize * PAGE + at;
            let files = with_file(&f.good, &data_name, |b| b[pos] ^= 0x20);
            m.add(kind, "flip a byte", check(f, &files));
        }
    }
    // Cut at every page boundary.
    for p in 0..pages {
        let files = with_file(&f.good, &data_name, |b| b.truncate(p as usize * PAGE));
        let kind = if page_kind(f, &data, p) == "space past the last page" {
            "space past the last page"
        } else {
            "page file"
        };
        m.add(kind, "cut at a page boundary", check(f, &files));
    }
    // Swap pairs of pages of the same kind (and tree with overflow).
    let by_kind = |k: &str| -> Vec<u64> {
        (3..pages)
            .filter(|&p| page_kind(f, &data, p) == k)
            .collect()
    };
    let leaves = by_kind("leaf page");
    let overflow = by_kind("overflow page");
    let branches = by_kind("branch page");
    let mut pairs: Vec<(&str, u64, u64)> = Vec::new();
    for w in leaves.windows(2).take(6) {
        pairs.push(("leaf page", w[0], w[1]));
    }
    for w in overflow.windows(2).take(3) {
        pairs.push(("overflow page", w[0], w[1]));
    }
    if let (Some(&b), Some(&l)) = (branches.first(), leaves.first()) {
        pairs.push(("branch page", b, l));
    }
    pairs.push(("meta page", 1, 2));
    for (kind, a, b) in pairs {
        let files = with_file(&f.good, &data_name, |d| {
            let (a, b) = (a as usize * PAGE, b as usize * PAGE);
            let pa = d[a..a + PAGE].to_vec();
            let pb = d[b..b + PAGE].to_vec();
            d[a..a + PAGE].copy_from_slice(&pb);
            d[b..b + PAGE].copy_from_slice(&pa);
        });
        m.add(kind, "swap two pages", check(f, &files));
    }
    // Put back an older sealed copy of each page that changed.
    let old = file(&f.older, &data_name);
    for p in 0..pages.min((old.len() / PAGE) as u64) {
        let r = p as usize * PAGE..(p as usize + 1) * PAGE;
        if old[r.clone()] != data[r.clone()] {
            let kind = page_kind(f, &data, p);
            // Where the older copy had no page yet, "putting it back" is
            // zeroing the page.
            let case = if old[r.clone()].iter().all(|&b| b == 0) {
                "zeros (no page there in the older copy)"
            } else {
                "older copy of the page"
            };
            let files = with_file(&f.good, &data_name, |d| {
                d[r.clone()].copy_from_slice(&old[r])
            });
            m.add(kind, case, check(f, &files));
        }
    }
    // Splice each page from the other database (same key, same offset).
    let theirs = file(&f.other, &data_name);
    for p in 0..pages.min((theirs.len() / PAGE) as u64) {
        let r = p as usize * PAGE..(p as usize + 1) * PAGE;
        if theirs[r.clone()] != data[r.clone()] {
            let kind = page_kind(f, &data, p);
            let files = with_file(&f.good, &data_name, |d| {
                d[r.clone()].copy_from_slice(&theirs[r])
            });
            m.add(kind, "page from another database", check(f, &files));
        }
    }

    // WAL segments: flips every 97 bytes, cuts at every 61 bytes (record
    // boundaries and inside records), the older copy, another database's.
    let segments = names(&f.good, ".wal");
    for name in &segments {
        let seg = file(&f.good, name).to_vec();
        // The fixture's tree holds every record but those of the last
        // segment: the earlier ones are kept only for the older meta slot.
        let kind = if name == segments.last().unwrap() {
            "WAL segment (live)"
        } else {
            "WAL segment (before the tree's state)"
        };
        let live = kind == "WAL segment (live)";
        let (flip_step, cut_step) = match (live, full()) {
            (_, true) | (true, _) => (97, 61),
            // Kept only for the older meta slot: sampled in the quick run.
            (false, false) => (1999, 1499),
        };
        for pos in (0..seg.len()).step_by(flip_step) {
            let files = with_file(&f.good, name, |b| b[pos] ^= 0x08);
            m.add(kind, "flip a byte", check(f, &files));
        }
        for cut in (0..seg.len()).step_by(cut_step) {
            let files = with_file(&f.good, name, |b| b.truncate(cut));
            m.add(kind, "cut", check(f, &files));
        }
        if let Some((_, theirs)) = f.other.iter().find(|(n, _)| n == name) {
            let files = with_file(&f.good, name, |b| *b = theirs.clone());
            m.add(kind, "segment from another database", check(f, &files));
        }
        let mut without = f.good.clone();
        without.retain(|(n, _)| n != name);
        m.add(kind, "segment removed", check(f, &without));
    }

    // The key registry: every byte flipped, cut every 16 bytes, the older
    // copy, the other database's.
    if f.alg.is_some() {
        let keys = file(&f.good, "KEYS").to_vec();
        for pos in (0..keys.len()).step_by(if full() { 1 } else { 3 }) {
            let files = with_file(&f.good, "KEYS", |b| b[pos] ^= 0x01);
            m.add("key registry", "flip a byte", check(f, &files));
        }
        for cut in (0..keys.len()).step_by(16) {
            let files = with_file(&f.good, "KEYS", |b| b.truncate(cut));
            m.add("key registry", "cut", check(f, &files));
        }
        let old_keys = file(&f.older, "KEYS").to_vec();
        let files = with_file(&f.good, "KEYS", |b| *b = old_keys);
        m.add("key registry", "older copy", check(f, &files));
        let their_keys = file(&f.other, "KEYS").to_vec();
        let files = with_file(&f.good, "KEYS", |b| *b = their_keys);
        m.add("key registry", "from another database", check(f, &files));
    }
    m
}

/// The full matrix (every byte of the registry, denser WAL sampling):
/// `SEALKV_TAMPER_FULL=1`. CI runs the quick one.
fn full() -> bool {
    std::env::var_os("SEALKV_TAMPER_FULL").is_some()
}

/// The expected outcomes of each case, by kind (never `Wrong`), for the
/// fixture as written or `compacted`: the table docs/SECURITY.md gives
/// with its counts.
fn expected(kind: &str, case: &str, compacted: bool) -> &'static [Outcome] {
    use Outcome::*;
    let tree = matches!(kind, "branch page" | "leaf page" | "overflow page");
    match (kind, case) {
        // Kept only for the older meta slot (retirement runs one flush
        // behind): replay starts after the tree's state and never reads
        // them; if an open falls back, the replay refuses damage there.
        ("WAL segment (before the tree's state)", _) => &[NoEffect],
        // A cut through a record is a torn tail (cut, reported); a cut at
        // a record boundary is a clean end: the documented limit.
        ("WAL segment (live)", "cut") => &[CrashLike, TornTail],
        // Damage before the last sync marker is Corruption; in the
        // unsynced marker at the very end, a torn tail.
        ("WAL segment (live)", "flip a byte") => &[Corruption, TornTail],
        ("WAL segment (live)", "segment from another database") => &[Corruption],
        ("WAL segment (live)", "segment removed") => &[CrashLike],
        // A compaction's commits follow the rotation: both meta slots
        // are sealed under the new data key, which the older registry
        // lacks, so it opens no meta page and is refused as Corruption
        // (with a freshness anchor, Rollback).
        ("key registry", "older copy") if compacted => &[Corruption],
        // The meta page records a newer registry.
        ("key registry", "older copy") => &[Rollback],
        // The file hash catches any byte before the key check.
        ("key registry", _) => &[Corruption],
        // Never read: past the page count.
        ("space past the last page", _) => &[NoEffect],
        ("page-file header", _) => &[Corruption],
        // Past the meta page's page count, or a page cut away: Corruption
        // at open or on read, or (a plaintext file cut past the newest
        // meta's pages) a fall-back to the older slot that `verify` names.
        ("page file", "cut at a page boundary") => &[Corruption, Finding],
        // Pages moved between slots fail their binding (the root's at
        // open, which falls back and `verify` names).
        (_, "swap two pages") if tree => &[Corruption, Finding],
        ("meta page", "swap two pages") => &[Corruption],
        // A stale version that authenticates: Rollback; the root's is
        // refused at open, which falls back to the older slot (the WAL
        // restores the rest) and `verify` names it.
        (_, "older copy of the page") if tree => &[Rollback, Finding],
        // Damage to a tree page: Corruption on read; to the root, a
        // fall-back at open that `verify` names.
        (
            _,
            "flip a byte"
            | "page from another database"
            | "zeros (no page there in the older copy)",
        ) if tree => &[Corruption, Finding],
        // The free list is read at open: damage makes the open fall back
        // to the older slot, which `verify` reports.
        ("free-list page", _) => &[Finding],
        // Either slot: the open steps around it (falling back if it was
        // the newest) and `verify` names it. The newest slot put back to
        // its previous commit, whose WAL is still there, is the state a
        // crash during the newer commit's meta write leaves: nothing to
        // tell, nothing lost.
        ("meta page", "older copy of the page") => &[Finding, NoEffect],
        ("meta page", _) => &[Finding],
        // A free page freed by the last commit must hold its recorded
        // version, and a zeroed one zeros (or a page a later, unfinished
        // commit sealed there): `verify` names it. A page freed before
        // may have been rewritten by a commit that died before its meta
        // page: nothing reads it, and `verify` counts it as overwritten.
        ("free page", _) => &[Finding, NoEffect],
        _ => &[],
    }
}

#[test]
fn tamper_matrix_never_returns_wrong_data() {
    let (report, problems) = matrices(false);
    println!("{report}");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The same matrix on a compacted database: pages moved and resealed by
/// the compaction, the older copy's pages the ones it moved away from.
#[test]
fn tamper_matrix_never_returns_wrong_data_on_a_compacted_file() {
    let (report, problems) = matrices(true);
    println!("{report}");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Runs the matrix in each mode and prints its `PROOF` lines; returns the
/// table and every outcome its row does not allow.
fn matrices(compacted: bool) -> (String, Vec<String>) {
    let mut report = String::new();
    let mut problems = Vec::new();
    for alg in [
        None,
        Some(EncryptionAlgorithm::Aes256Gcm),
        Some(EncryptionAlgorithm::ChaCha20Poly1305),
    ] {
        let f = fixture(alg, compacted);
        let m = run_matrix(&f);
        let mode = alg.map_or("plaintext".to_string(), |a| a.to_string());
        let mode = if compacted {
            format!("compacted-{mode}")
        } else {
            mode
        };
        writeln!(report, "\n{mode}").unwrap();
        let mut total = 0;
        let mut per_kind: BTreeMap<Outcome, usize> = BTreeMap::new();
        for ((kind, case), outcomes) in &m.cells {
            let n: usize = outcomes.values().sum();
            total += n;
            let counts: Vec<String> = Outcome::ALL
                .iter()
                .map(|o| outcomes.get(o).copied().unwrap_or(0).to_string())
                .collect();
            writeln!(report, "| {kind} | {case} | {n} | {} |", counts.join(" | ")).unwrap();
            let allowed = expected(kind, case, compacted);
            for (o, c) in outcomes {
                *per_kind.entry(*o).or_insert(0) += c;
                if !allowed.contains(o) {
                    problems.push(format!(
                        "{mode}: {kind} / {case}: {c} x {o:?}, expected one of {allowed:?}"
                    ));
                }
            }
        }
        writeln!(report, "{mode}: {total} cases; by kind {per_kind:?}").unwrap();
        let n = |o: Outcome| per_kind.get(&o).copied().unwrap_or(0) as u64;
        let detected = [
            Outcome::Corruption,
            Outcome::Rollback,
            Outcome::WrongKey,
            Outcome::OtherError,
            Outcome::Finding,
            Outcome::TornTail,
        ]
        .into_iter()
        .map(n)
        .sum();
        sealkv_testkit::proof::print_proof(
            "tamper-engine",
            &mode,
            &[
                ("cases", total as u64),
                ("detected", detected),
                ("corruption", n(Outcome::Corruption)),
                ("rollback", n(Outcome::Rollback)),
                ("wrong_key", n(Outcome::WrongKey)),
                ("other_error", n(Outcome::OtherError)),
                ("finding", n(Outcome::Finding)),
                ("torn_tail", n(Outcome::TornTail)),
                ("crash_like", n(Outcome::CrashLike)),
                ("no_effect", n(Outcome::NoEffect)),
                ("wrong", n(Outcome::Wrong)),
            ],
        );
    }
    (report, problems)
}
