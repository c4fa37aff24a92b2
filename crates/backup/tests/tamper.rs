//! The tamper matrix's backup rows: physical backups taken with
//! `Db::backup_to` and export archives, damaged on purpose, then checked
//! with `verify_backup` / `restore` and `verify_archive` / `import`.
//!
//! Expected outcomes, written down before the run:
//!
//! - Physical backup, page file (header, meta, branch, leaf, overflow,
//!   free-list pages), key registry: **detected** for every tamper — flip a
//!   byte, cut at a page boundary, swap two pages, an older sealed copy of
//!   a page from an earlier backup, a page from another database's backup
//!   under the same key. `verify_backup` and `restore` both fail with a
//!   typed error (`Damaged` with findings naming the file, `Corruption`,
//!   `Rollback`, `WrongKey`, or a store/WAL/registry error naming its
//!   file), and `restore` writes nothing: no destination, no temporary.
//! - Allowed **no effect** (nothing read changes, both succeed, the
//!   restored database equals the backup): the space past the last page
//!   (never read); free pages (a backup zeroes them; nothing reads them);
//!   the backup's WAL segment, which holds no record (the backup is the
//!   page file's committed state): a cut or a removed segment is a crash
//!   right after the segment's creation.
//! - Found by the first run and then allowed, with the reason (see
//!   `docs/SECURITY.md`): flips in that header-only WAL segment are no
//!   effect too (a damaged header-only last segment is a torn creation);
//!   the earlier backup's copy of the newest meta slot is no effect (open
//!   uses the previous commit, which holds the same records); a plaintext
//!   archive accepts a chunk of another plaintext export at the same
//!   position (checksums, not a MAC: the documented limit of an export
//!   without a key), and another plaintext export's header (informational
//!   fields only). The first run also found the page file of another
//!   database reported as `Store(WrongDatabase)` without the file's name;
//!   the engine now reports it as `Corruption` naming `data.sealkv`.
//! - Export archive (sealed under a key, and plaintext with checksums):
//!   **detected** for every tamper — flip a byte, cut at every chunk
//!   boundary and inside each chunk, swap two chunks, a chunk from an
//!   older export of the same database, a chunk or the header from another
//!   database's export under the same key. `verify_archive` and `import`
//!   fail (`Corruption`/`Truncated` naming the header or chunk, or
//!   `WrongKey`), and `import` leaves no database behind.
//! - **Wrong** (a value never written, a key that does not exist, or a
//!   record silently lost): never allowed.
//!
//! Quick by default (CI); `SEALKV_TAMPER_FULL=1` for every byte. Run with
//! `--nocapture` for the counts that go into `docs/SECURITY.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::crypto::{EncryptionAlgorithm, KeySource, MasterKey};
use sealkv::{Config, Db, Error};
use sealkv_backup::archive::{
    self, ArchiveError, ArchiveReader, ExportOptions, ImportOptions, format,
};
use sealkv_backup::{RestoreError, RestoreOptions, restore, verify_backup};
use sealkv_fileio::{LockKind, OpenMode, SimVfs, Vfs, VfsFile, VfsLock};
use sealkv_testkit::read_sim_tree;

type Files = Vec<(String, Vec<u8>)>;
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PAGE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Detected,
    NoEffect,
    /// A plaintext archive accepted records of another plaintext archive:
    /// the documented limit of an export without a key.
    Unauthenticated,
    /// Wrong data, silently lost records, an untyped error, a disagreement
    /// between the check and the restore, or a restore that left files.
    Wrong,
}

/// `SimVfs` with directory renames (a backup and a restore build their
/// copy in a temporary directory and rename it into place; `SimVfs`
/// renames files only): a directory rename moves every file under it.
#[derive(Debug, Clone)]
struct Sim(SimVfs);

impl Vfs for Sim {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn VfsFile>> {
        self.0.open(path, mode)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.0.remove_file(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.0.read_dir(from).is_err() {
            return self.0.rename(from, to);
        }
        let mut dirs = vec![from.to_path_buf()];
        let mut i = 0;
        while let Some(d) = dirs.get(i).cloned() {
            i += 1;
            self.0
                .create_dir_all(&to.join(d.strip_prefix(from).unwrap()))?;
            for p in self.0.read_dir(&d)? {
                if self.0.read_dir(&p).is_ok() {
                    dirs.push(p);
                } else {
                    self.0.rename(&p, &to.join(p.strip_prefix(from).unwrap()))?;
                }
            }
        }
        for d in dirs.iter().rev() {
            self.0.remove_dir(d)?;
        }
        Ok(())
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.0.remove_dir(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.0.read_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.0.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.0.sync_dir(path)
    }
    fn lock(&self, path: &Path, kind: LockKind) -> io::Result<Box<dyn VfsLock>> {
        self.0.lock(path, kind)
    }
}

fn full() -> bool {
    std::env::var_os("SEALKV_TAMPER_FULL").is_some()
}

fn key() -> MasterKey {
    MasterKey::from_bytes(&[0x5c; 32]).unwrap()
}

fn config(vfs: &SimVfs, path: &Path, alg: Option<EncryptionAlgorithm>) -> Config {
    let c = Config::new(path)
        .vfs(Arc::new(Sim(vfs.clone())))
        .memtable_size(64 << 10);
    match alg {
        Some(a) => c
            .encryption_key(key())
            .encrypt_at_rest(true)
            .encryption_algorithm(a),
        None => c,
    }
}

/// Counts per (file kind, tamper) and outcome, and what went wrong.
#[derive(Default)]
struct Matrix {
    cells: BTreeMap<(String, &'static str), BTreeMap<Outcome, usize>>,
    problems: Vec<String>,
    /// Cases offered per row, for the quick run's sampling.
    offered: BTreeMap<(String, &'static str), usize>,
}

impl Matrix {
    /// Whether to run the next case of a row: all in the full run; in the
    /// quick run the first and then one in `quick_every`.
    fn wanted(&mut self, kind: &str, case: &'static str, quick_every: usize) -> bool {
        let n = self.offered.entry((kind.to_string(), case)).or_insert(0);
        *n += 1;
        full() || (*n - 1).is_multiple_of(quick_every)
    }

    fn add(&mut self, kind: &str, case: &'static str, o: Outcome, why: impl FnOnce() -> String) {
        *self
            .cells
            .entry((kind.to_string(), case))
            .or_default()
            .entry(o)
            .or_insert(0) += 1;
        let allowed = match o {
            Outcome::Detected => true,
            Outcome::NoEffect => may_have_no_effect(kind, case),
            Outcome::Unauthenticated => unauthenticated(kind, case),
            Outcome::Wrong => false,
        };
        if !allowed {
            let p = format!("{kind} / {case}: {o:?}: {}", why());
            if !self.problems.contains(&p) {
                self.problems.push(p);
            }
        }
    }

    fn report(&self, title: &str, out: &mut String) -> usize {
        writeln!(out, "\n{title}").unwrap();
        let mut total = 0;
        for ((kind, case), outcomes) in &self.cells {
            let count = |o| outcomes.get(&o).copied().unwrap_or(0);
            let n: usize = outcomes.values().sum();
            total += n;
            writeln!(
                out,
                "| {kind} | {case} | {n} | {} | {} | {} | {} |",
                count(Outcome::Detected),
                count(Outcome::NoEffect),
                count(Outcome::Unauthenticated),
                count(Outcome::Wrong)
            )
            .unwrap();
        }
        writeln!(out, "{title}: {total} cases").unwrap();
        let sum = |o| {
            self.cells
                .values()
                .map(|c| c.get(&o).copied().unwrap_or(0) as u64)
                .sum::<u64>()
        };
        sealkv_testkit::proof::print_proof(
            "tamper-backup",
            &title.replace(", ", "/").replace(' ', "-"),
            &[
                ("cases", total as u64),
                ("detected", sum(Outcome::Detected)),
                ("no_effect", sum(Outcome::NoEffect)),
                ("unauthenticated", sum(Outcome::Unauthenticated)),
                ("wrong", sum(Outcome::Wrong)),
            ],
        );
        total
    }
}

/// The rows allowed to have no effect (see the module docs).
fn may_have_no_effect(kind: &str, case: &str) -> bool {
    matches!(
        (kind, case),
        // Never read.
        ("backup: space past the last page", _)
            // Zeroed by the copy, read by nothing (verify finds some).
            | ("backup: free page", _)
            // Holds no record; a damaged header-only last segment is a
            // crash during its creation, and restore writes a new WAL.
            | ("backup: WAL segment (no record)", _)
            // Into the newest slot: open uses the other slot, the commit
            // before, which holds the same records (the copy ends with
            // zeroing commits that change none).
            | ("backup: meta page", "older copy of the page (earlier backup)")
            // A plaintext header's fields other than the format are
            // informational; the records are unchanged.
            | ("export archive (plaintext, checksummed)", "header from another database's export")
    )
}

/// The documented limit of a plaintext export: checksums, not a MAC. A
/// chunk of another plaintext export at the same position, with its
/// checksum, is accepted — anyone can write a plaintext archive, which is
/// why a key refuses one.
fn unauthenticated(kind: &str, case: &str) -> bool {
    kind == "export archive (plaintext, checksummed)"
        && matches!(
            case,
            "chunk from an older export" | "chunk from another database's export"
        )
}

// ---------------------------------------------------------------------------
// Physical backups.

/// A database with branches, leaves, overflow values and (sealed) two data
/// keys; its backup, an older backup, and the model at the backup.
fn build(vfs: &SimVfs, alg: Option<EncryptionAlgorithm>, seed: u8) -> (Files, Files, Model) {
    let root = PathBuf::from(format!("/src{seed}"));
    vfs.create_dir_all(&root).unwrap();
    let db = Db::open_with_config(config(vfs, &root.join("db"), alg)).unwrap();
    let mut model = Model::new();
    let mut put = |db: &Db, i: u32, round: u8| {
        let k = format!("tamper/{i:05}").into_bytes();
        let len = if i.is_multiple_of(50) { 9000 } else { 60 };
        let v = vec![seed ^ round ^ (i as u8); len];
        db.put(&k, &v).unwrap();
        model.insert(k, v);
    };
    for i in 0..300 {
        put(&db, i, 1);
    }
    db.backup_to(&root.join("older"), &mut |_| {}).unwrap();
    for i in (0..100).chain(300..400) {
        put(&db, i, 2);
    }
    if alg.is_some() {
        db.rotate_data_key().unwrap();
    }
    for i in 400..440 {
        put(&db, i, 3);
    }
    db.delete(b"tamper/00007").unwrap();
    model.remove(&b"tamper/00007"[..]);
    db.backup_to(&root.join("good"), &mut |_| {}).unwrap();
    db.close().unwrap();
    (
        files_under(vfs, &root.join("good")),
        files_under(vfs, &root.join("older")),
        model,
    )
}

/// The files under `dir`, named relative to it (the lock file left out).
fn files_under(vfs: &SimVfs, dir: &Path) -> Files {
    let prefix = format!("{}/", dir.display());
    let mut v: Files = read_sim_tree(vfs, dir)
        .into_iter()
        .filter_map(|(n, b)| Some((n.strip_prefix(&prefix)?.to_string(), b)))
        .filter(|(n, _)| !n.ends_with("LOCK"))
        .collect();
    v.sort();
    v
}

struct Fixture {
    alg: Option<EncryptionAlgorithm>,
    good: Files,
    older: Files,
    other: Files,
    model: Model,
    roles: BTreeMap<u64, &'static str>,
}

fn fixture(alg: Option<EncryptionAlgorithm>) -> Fixture {
    let vfs = SimVfs::new();
    let (good, older, model) = build(&vfs, alg, 0x11);
    let (other, _, _) = build(&vfs, alg, 0x22);
    // The roles of the backup's pages (`build` put it under /src{seed}).
    let good_dir = PathBuf::from(format!("/src{}/good", 0x11));
    let db = Db::open_with_config(config(&vfs, &good_dir, alg).read_only(true)).unwrap();
    let roles = db.page_roles().unwrap().into_iter().collect();
    drop(db);
    Fixture {
        alg,
        good,
        older,
        other,
        model,
        roles,
    }
}

fn file<'a>(files: &'a Files, name: &str) -> &'a [u8] {
    &files.iter().find(|(n, _)| n == name).unwrap().1
}

fn with_file(files: &Files, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> Files {
    let mut out = files.clone();
    if let Some((_, bytes)) = out.iter_mut().find(|(n, _)| n == name) {
        edit(bytes);
    }
    out
}

/// Damage must surface as the typed errors the docs promise, naming the
/// backup's files (a wrong key names nothing: there is nothing to name).
fn typed(e: &RestoreError) -> Result<(), String> {
    let ok = match e {
        RestoreError::Damaged { findings, .. } => !findings.is_empty(),
        RestoreError::Db(
            Error::Corruption { .. }
            | Error::Rollback { .. }
            | Error::WrongKey
            | Error::EncryptedDatabase
            | Error::PlaintextDatabase { .. }
            | Error::Wal(_)
            | Error::Store(_)
            | Error::Registry(_)
            | Error::Key(_)
            | Error::Crypto(_),
        ) => true,
        _ => false,
    };
    let named = matches!(
        e,
        RestoreError::Db(Error::WrongKey | Error::EncryptedDatabase)
    ) || e.to_string().contains("/r/bk");
    if ok && named {
        Ok(())
    } else {
        Err(format!("untyped or unnamed error: {e:?} / {e}"))
    }
}

/// Puts `files` in place as a backup, checks it and restores it.
fn check(f: &Fixture, files: &Files) -> (Outcome, String) {
    let vfs = SimVfs::new();
    let bk = Path::new("/r/bk");
    for (name, bytes) in files {
        vfs.write_file(&bk.join(name), bytes);
    }
    let cfg = config(&vfs, bk, f.alg);
    let dest = Path::new("/r/dest");
    let verified = verify_backup(&cfg);
    let restored = restore(&cfg, dest, &RestoreOptions::new(), &mut |_| {});
    let left: Vec<PathBuf> = vfs.read_dir(Path::new("/r")).unwrap();
    match (verified, restored) {
        (Err(a), Err(b)) => {
            if let Err(why) = typed(&a).and(typed(&b)) {
                return (Outcome::Wrong, why);
            }
            if left != [bk.to_path_buf()] {
                return (Outcome::Wrong, format!("a failed restore left {left:?}"));
            }
            (Outcome::Detected, String::new())
        }
        (Ok(_), Ok(_)) => {
            let db = match Db::open_with_config(config(&vfs, dest, f.alg)) {
                Ok(db) => db,
                Err(e) => {
                    return (
                        Outcome::Wrong,
                        format!("the restored copy does not open: {e}"),
                    );
                }
            };
            let all: Result<Model, _> = db.range::<&[u8]>(..).unwrap().collect();
            match all {
                Ok(all) if all == f.model => (Outcome::NoEffect, String::new()),
                Ok(all) => (
                    Outcome::Wrong,
                    format!(
                        "restored {} records, the backup had {}",
                        all.len(),
                        f.model.len()
                    ),
                ),
                Err(e) => (
                    Outcome::Wrong,
                    format!("the restored copy fails a read: {e}"),
                ),
            }
        }
        (a, b) => (
            Outcome::Wrong,
            format!(
                "verify_backup and restore disagree: {:?} / {:?}",
                a.err(),
                b.err()
            ),
        ),
    }
}

fn page_kind(f: &Fixture, data: &[u8], p: u64) -> &'static str {
    match p {
        0 => "backup: page-file header",
        1 | 2 => "backup: meta page",
        _ => match f.roles.get(&p).copied() {
            Some("tree") => match data.get(p as usize * PAGE) {
                Some(2) => "backup: branch page",
                _ => "backup: leaf page",
            },
            Some("overflow") => "backup: overflow page",
            Some("free-list") => "backup: free-list page",
            Some("free") => "backup: free page",
            _ => "backup: space past the last page",
        },
    }
}

fn backup_matrix(f: &Fixture) -> Matrix {
    let mut m = Matrix::default();
    let data_name = "data.sealkv";
    let data = file(&f.good, data_name).to_vec();
    let pages = (data.len() / PAGE) as u64;
    let run = |m: &mut Matrix, kind: &str, case: &'static str, files: &Files| {
        let every = match case {
            "flip a byte" => 24,
            "cut" | "cut at a page boundary" => 12,
            _ => 6,
        };
        if !m.wanted(kind, case, every) {
            return;
        }
        let (o, why) = check(f, files);
        m.add(kind, case, o, || why);
    };

    // Flips: three per page (header, body, tag), sampled in the quick run;
    // every 61st byte in the full run.
    for p in 0..pages {
        let kind = page_kind(f, &data, p);
        let offsets: Vec<usize> = if full() {
            (0..PAGE).step_by(61).chain([PAGE - 1]).collect()
        } else {
            vec![5, PAGE / 2 + 3, PAGE - 3]
        };
        for at in offsets {
            let pos = p as usize * PAGE + at;
            let files = with_file(&f.good, data_name, |b| b[pos] ^= 0x20);
            run(&mut m, kind, "flip a byte", &files);
        }
    }
    // Cut at every page boundary (0 included).
    for p in 0..pages {
        let files = with_file(&f.good, data_name, |b| b.truncate(p as usize * PAGE));
        let kind = match page_kind(f, &data, p) {
            "backup: space past the last page" => "backup: space past the last page",
            _ => "backup: page file",
        };
        run(&mut m, kind, "cut at a page boundary", &files);
    }
    // Swap pairs of pages.
    let by_kind = |k: &str| -> Vec<u64> {
        (3..pages)
            .filter(|&p| page_kind(f, &data, p) == k)
            .collect()
    };
    let leaves = by_kind("backup: leaf page");
    let overflow = by_kind("backup: overflow page");
    let branches = by_kind("backup: branch page");
    let mut pairs: Vec<(&str, u64, u64)> = Vec::new();
    for w in leaves.windows(2) {
        pairs.push(("backup: leaf page", w[0], w[1]));
    }
    for w in overflow.windows(2) {
        pairs.push(("backup: overflow page", w[0], w[1]));
    }
    if let (Some(&b), Some(&l)) = (branches.first(), leaves.first()) {
        pairs.push(("backup: branch page", b, l));
    }
    pairs.push(("backup: meta page", 1, 2));
    for (kind, a, b) in pairs {
        let files = with_file(&f.good, data_name, |d| {
            let (a, b) = (a as usize * PAGE, b as usize * PAGE);
            let pa = d[a..a + PAGE].to_vec();
            let pb = d[b..b + PAGE].to_vec();
            d[a..a + PAGE].copy_from_slice(&pb);
            d[b..b + PAGE].copy_from_slice(&pa);
        });
        run(&mut m, kind, "swap two pages", &files);
    }
    // An older sealed copy of each page (from the earlier backup), and
    // each page of the other database's backup (same key, same offset).
    for (source, case) in [
        (&f.older, "older copy of the page (earlier backup)"),
        (&f.other, "page from another database's backup"),
    ] {
        let theirs = file(source, data_name);
        for p in 0..pages.min((theirs.len() / PAGE) as u64) {
            let r = p as usize * PAGE..(p as usize + 1) * PAGE;
            if theirs[r.clone()] != data[r.clone()] {
                let kind = page_kind(f, &data, p);
                let files = with_file(&f.good, data_name, |d| {
                    d[r.clone()].copy_from_slice(&theirs[r])
                });
                run(&mut m, kind, case, &files);
            }
        }
    }

    // The WAL segments of the backup (they hold no record).
    let segments: Vec<String> = f
        .good
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| n.ends_with(".wal"))
        .collect();
    assert!(!segments.is_empty(), "a backup has a WAL segment");
    for name in &segments {
        let kind = "backup: WAL segment (no record)";
        let seg = file(&f.good, name).to_vec();
        for pos in 0..seg.len() {
            let files = with_file(&f.good, name, |b| b[pos] ^= 0x08);
            run(&mut m, kind, "flip a byte", &files);
        }
        for cut in 0..seg.len() {
            let files = with_file(&f.good, name, |b| b.truncate(cut));
            run(&mut m, kind, "cut", &files);
        }
        if let Some((_, theirs)) = f.other.iter().find(|(n, _)| n == name) {
            let files = with_file(&f.good, name, |b| *b = theirs.clone());
            run(
                &mut m,
                kind,
                "segment from another database's backup",
                &files,
            );
        }
        let mut without = f.good.clone();
        without.retain(|(n, _)| n != name);
        run(&mut m, kind, "segment removed", &without);
    }

    // The key registry.
    if f.alg.is_some() {
        let kind = "backup: key registry";
        let keys = file(&f.good, "KEYS").to_vec();
        for pos in 0..keys.len() {
            let files = with_file(&f.good, "KEYS", |b| b[pos] ^= 0x01);
            run(&mut m, kind, "flip a byte", &files);
        }
        for cut in (0..keys.len()).step_by(16) {
            let files = with_file(&f.good, "KEYS", |b| b.truncate(cut));
            run(&mut m, kind, "cut", &files);
        }
        let older = file(&f.older, "KEYS").to_vec();
        let files = with_file(&f.good, "KEYS", |b| *b = older);
        run(&mut m, kind, "older copy (earlier backup)", &files);
        let theirs = file(&f.other, "KEYS").to_vec();
        let files = with_file(&f.good, "KEYS", |b| *b = theirs);
        run(&mut m, kind, "from another database's backup", &files);
        let mut without = f.good.clone();
        without.retain(|(n, _)| n != "KEYS");
        run(&mut m, kind, "removed", &without);
    }
    m
}

// ---------------------------------------------------------------------------
// Export archives.

struct Archives {
    dir: tempfile::TempDir,
    key: Option<KeySource>,
    good: Vec<u8>,
    older: Vec<u8>,
    other: Vec<u8>,
    model: Model,
}

fn export(db: &Db, path: &Path, key: &Option<KeySource>) -> Vec<u8> {
    let opts = match key {
        Some(k) => ExportOptions::sealed(k.clone()),
        None => ExportOptions::plaintext_unencrypted(),
    }
    .chunk_size(256);
    archive::export(db, path, &opts, &mut |_| {}).unwrap();
    std::fs::read(path).unwrap()
}

fn archives(sealed: bool) -> Archives {
    let dir = tempfile::tempdir().unwrap();
    let key = sealed.then(|| KeySource::Key(key()));
    let mut out = Vec::new();
    let mut model = Model::new();
    for (n, name) in ["a", "b"].into_iter().enumerate() {
        let db = Db::open(dir.path().join(format!("{name}-db"))).unwrap();
        let mut put = |i: u32, round: u32| {
            let k = format!("rec/{i:04}").into_bytes();
            let v = format!("{name} round {round} value {i}").into_bytes();
            db.put(&k, &v).unwrap();
            if n == 0 {
                model.insert(k, v);
            }
        };
        for i in 0..60 {
            put(i, 1);
        }
        let older = export(&db, &dir.path().join(format!("{name}-older.skva")), &key);
        for i in 0..30 {
            put(i, 2);
        }
        let good = export(&db, &dir.path().join(format!("{name}.skva")), &key);
        out.push((good, older));
    }
    let (other, _) = out.pop().unwrap();
    let (good, older) = out.pop().unwrap();
    Archives {
        dir,
        key,
        good,
        older,
        other,
        model,
    }
}

/// Chunk offsets, parsed from the frames (the trailer is the last chunk).
fn chunk_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut at = format::HEADER_LEN;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at);
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        at += format::FRAME_LEN + len + format::CHUNK_TAG_LEN;
    }
    assert_eq!(at, bytes.len());
    out
}

fn archive_typed(e: &ArchiveError) -> bool {
    match e {
        ArchiveError::Corruption { .. } | ArchiveError::Truncated { .. } => e.location().is_some(),
        ArchiveError::WrongKey { .. }
        | ArchiveError::NotSealed { .. }
        | ArchiveError::Unsupported { .. } => true,
        _ => false,
    }
}

/// Writes `bytes` as an archive, checks it, and (every case in the full
/// run, one in eight quick) imports it.
fn check_archive(a: &Archives, bytes: &[u8], n: usize) -> (Outcome, String) {
    let path = a.dir.path().join("case.skva");
    std::fs::write(&path, bytes).unwrap();
    let verified = archive::verify_archive(&path, a.key.as_ref(), &mut |_| {});
    let import = full() || n.is_multiple_of(8);
    let dest = a.dir.path().join("imported");
    let imported = import.then(|| {
        archive::import(
            &path,
            a.key.as_ref(),
            &dest,
            &|d: &Path| Config::new(d),
            &ImportOptions::new(),
            &mut |_| {},
        )
    });
    let leftovers = std::fs::read_dir(a.dir.path())
        .unwrap()
        .filter(|e| {
            let n = e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .into_owned();
            n.starts_with("imported")
        })
        .count();
    let result = match (&verified, &imported) {
        (Err(e), None) | (Err(e), Some(Err(_))) if !archive_typed(e) => {
            (Outcome::Wrong, format!("untyped or unlocated error: {e:?}"))
        }
        (Err(_), Some(Err(e))) if !archive_typed(e) => {
            (Outcome::Wrong, format!("import: untyped error {e:?}"))
        }
        (Err(_), None | Some(Err(_))) if leftovers > 0 => {
            (Outcome::Wrong, "a failed import left files".into())
        }
        (Err(_), None | Some(Err(_))) => (Outcome::Detected, String::new()),
        (Ok(_), None | Some(Ok(_))) => {
            // Read what was accepted and compare it to the model.
            let provider = sealkv::crypto::CryptoProvider::default();
            let mut r = ArchiveReader::open(bytes, &path, a.key.as_ref(), &provider).unwrap();
            let mut got = Model::new();
            while let Some((k, v)) = r.next_record().unwrap() {
                got.insert(k, v);
            }
            if got == a.model {
                (Outcome::NoEffect, String::new())
            } else if a.key.is_none() && got.keys().eq(a.model.keys()) {
                (
                    Outcome::Unauthenticated,
                    format!(
                        "accepted {} other values",
                        got.iter()
                            .filter(|(k, v)| a.model.get(*k) != Some(*v))
                            .count()
                    ),
                )
            } else {
                (
                    Outcome::Wrong,
                    format!("accepted with {} records", got.len()),
                )
            }
        }
        (v, i) => (
            Outcome::Wrong,
            format!(
                "verify_archive and import disagree: {:?} / {:?}",
                v.as_ref().err(),
                i.as_ref().map(|r| r.as_ref().err())
            ),
        ),
    };
    let _ = std::fs::remove_dir_all(&dest);
    result
}

fn archive_matrix(a: &Archives) -> Matrix {
    let mut m = Matrix::default();
    let kind = if a.key.is_some() {
        "export archive (sealed)"
    } else {
        "export archive (plaintext, checksummed)"
    };
    let offsets = chunk_offsets(&a.good);
    assert!(offsets.len() > 5);
    let mut n = 0usize;
    let mut run = |m: &mut Matrix, case: &'static str, bytes: &[u8]| {
        let every = match case {
            "flip a byte" => 40,
            "cut" => 8,
            _ => 3,
        };
        if !m.wanted(kind, case, every) {
            return;
        }
        n += 1;
        let (o, why) = check_archive(a, bytes, n);
        m.add(kind, case, o, || why);
    };
    for pos in 0..a.good.len() {
        let mut b = a.good.clone();
        b[pos] ^= 0x01;
        run(&mut m, "flip a byte", &b);
    }
    // Cut at every chunk boundary and inside the header and each chunk.
    let mut cuts: Vec<usize> = vec![0, format::HEADER_LEN / 2];
    for (i, &off) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(a.good.len());
        cuts.extend([off, off + 3, (off + end) / 2, end - 1]);
    }
    for cut in cuts {
        run(&mut m, "cut", &a.good[..cut]);
    }
    let span = |bytes: &[u8], offs: &[usize], i: usize| -> (usize, usize) {
        (offs[i], offs.get(i + 1).copied().unwrap_or(bytes.len()))
    };
    // Swap neighbouring chunks (the trailer included).
    for i in 0..offsets.len() - 1 {
        let (s1, e1) = span(&a.good, &offsets, i);
        let (s2, e2) = span(&a.good, &offsets, i + 1);
        let mut b = a.good[..s1].to_vec();
        b.extend_from_slice(&a.good[s2..e2]);
        b.extend_from_slice(&a.good[s1..e1]);
        b.extend_from_slice(&a.good[e2..]);
        run(&mut m, "swap two chunks", &b);
    }
    // A chunk (at the same index) from an older export of the same
    // database, and from another database's export under the same key.
    for (source, case) in [
        (&a.older, "chunk from an older export"),
        (&a.other, "chunk from another database's export"),
    ] {
        let theirs = chunk_offsets(source);
        for i in 0..offsets.len().min(theirs.len()) {
            let (s, e) = span(&a.good, &offsets, i);
            let (ts, te) = span(source, &theirs, i);
            let mut b = a.good[..s].to_vec();
            b.extend_from_slice(&source[ts..te]);
            b.extend_from_slice(&a.good[e..]);
            if b != a.good {
                run(&mut m, case, &b);
            }
        }
    }
    // The header of the other database's export on this one's chunks.
    let mut b = a.other[..format::HEADER_LEN].to_vec();
    b.extend_from_slice(&a.good[format::HEADER_LEN..]);
    run(&mut m, "header from another database's export", &b);
    // A chunk dropped, a chunk duplicated.
    for i in 0..offsets.len() - 1 {
        let (s, e) = span(&a.good, &offsets, i);
        let mut dropped = a.good[..s].to_vec();
        dropped.extend_from_slice(&a.good[e..]);
        run(&mut m, "chunk removed", &dropped);
        let mut dup = a.good[..e].to_vec();
        dup.extend_from_slice(&a.good[s..]);
        run(&mut m, "chunk duplicated", &dup);
    }
    m
}

#[test]
fn tampered_backups_and_archives_are_refused_and_restore_nothing() {
    let mut report = String::new();
    let mut problems = Vec::new();
    let mut modes = vec![None, Some(EncryptionAlgorithm::Aes256Gcm)];
    // ChaCha20-Poly1305 seals the same way: only in the full run.
    if full() {
        modes.push(Some(EncryptionAlgorithm::ChaCha20Poly1305));
    }
    for alg in modes {
        let f = fixture(alg);
        let m = backup_matrix(&f);
        let mode = alg.map_or("plaintext".to_string(), |a| a.to_string());
        m.report(&format!("physical backup, {mode}"), &mut report);
        problems.extend(m.problems.iter().map(|p| format!("{mode}: {p}")));
    }
    for sealed in [false, true] {
        let a = archives(sealed);
        let m = archive_matrix(&a);
        m.report(
            if sealed {
                "archive, sealed"
            } else {
                "archive, plaintext"
            },
            &mut report,
        );
        problems.extend(m.problems.iter().map(|p| format!("archive: {p}")));
    }
    println!("{report}");
    assert!(problems.is_empty(), "{problems:#?}");
}
