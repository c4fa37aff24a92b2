//! The parent: runs a child, kills it, reopens and checks, again and again.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use sealkv::Db;
use sealkv_fileio::SplitMix64;

use crate::mode::Mode;
use crate::scratch::{self, Scratch};
use crate::workload::{self, STREAMS};

/// What `sealkv-crash` was asked to do.
#[derive(Debug)]
pub(crate) struct RunArgs {
    /// Cycles in all, shared round-robin among the modes.
    pub(crate) cycles: u64,
    pub(crate) modes: Vec<Mode>,
    pub(crate) seed: u64,
    /// Where the databases go (a temporary directory if not given).
    pub(crate) dir: Option<PathBuf>,
    pub(crate) verbose: bool,
    /// Open with a freshness anchor file beside each database directory.
    pub(crate) anchored: bool,
}

/// A cycle gives up waiting for its kill point after this long and kills
/// the child anyway.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(3);

/// The lines a kill can be aimed at (the child prints each before the
/// operation it names).
const MARKERS: [&str; 10] = [
    "begin write",
    "begin flush",
    "begin txn",
    "begin fill",
    "begin drop",
    "begin rotate",
    "begin rekey",
    "begin field key",
    "begin reencrypt",
    "step",
];

/// When to kill the child.
#[derive(Debug, Clone, Copy)]
enum Plan {
    /// This long after the child was started: often inside its open (WAL
    /// replay, torn-tail repair, the first writes).
    AfterSpawn(Duration),
    /// This long after the child said `open`.
    AfterOpen(Duration),
    /// This long after the child's `nth` line starting with `marker`.
    AtMarker {
        marker: &'static str,
        nth: u64,
        delay: Duration,
    },
}

impl Plan {
    fn choose(rng: &mut SplitMix64, sealed: bool) -> Plan {
        let r = rng.below(100);
        if r < 10 {
            return Plan::AfterSpawn(Duration::from_micros(rng.below(40_000)));
        }
        if r < 35 {
            return Plan::AfterOpen(Duration::from_micros(rng.below(100_000)));
        }
        // Plaintext children write, commit transactions, fill and drop
        // keyspaces and flush; only sealed ones touch keys.
        let markers: &[&'static str] = if sealed { &MARKERS } else { &MARKERS[..5] };
        let marker = markers[rng.below(markers.len() as u64) as usize];
        let nth = match marker {
            "begin write" | "begin txn" => 1 + rng.below(40),
            "begin flush" | "step" => 1 + rng.below(2),
            _ => 1,
        };
        // Right away, inside the first half millisecond, or within 5 ms.
        let delay = match rng.below(3) {
            0 => Duration::ZERO,
            1 => Duration::from_micros(rng.below(500)),
            _ => Duration::from_micros(rng.below(5_000)),
        };
        Plan::AtMarker { marker, nth, delay }
    }

    fn label(&self) -> String {
        match self {
            Plan::AfterSpawn(_) => "after spawn".into(),
            Plan::AfterOpen(_) => "after open".into(),
            Plan::AtMarker { marker, .. } => format!("at {marker}"),
        }
    }
}

/// Figures of one mode.
#[derive(Debug, Default, Clone)]
struct ModeFigures {
    cycles: u64,
    /// Batches acknowledged by children.
    acked: u64,
    /// Batches in flight at the kill that turned out applied.
    in_flight_applied: u64,
    /// Torn WAL tails the reopen repaired.
    torn_tails: u64,
    /// The last batch applied of each stream, as of the last check.
    last: [u64; STREAMS],
    /// Transactions acknowledged (streams 1 and 2).
    transactions: u64,
    /// Transaction bodies run again after a conflict.
    retries: u64,
    /// Scratch keyspace drops acknowledged.
    drops: u64,
    /// Drops in flight at the kill, and how many of them the reopen found
    /// done (the keyspace gone, its purge finished at open if the kill
    /// cut it short).
    drops_in_flight: u64,
    drops_in_flight_done: u64,
    /// What the scratch keyspace held at the last check.
    scratch: Scratch,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    per_mode: Vec<(Mode, ModeFigures)>,
    kills: BTreeMap<String, u64>,
    lost: u64,
    partial: u64,
    /// Scratch keyspaces found other than their fills and drops allow.
    wrong_keyspaces: u64,
    verify_findings: u64,
    /// Cycles whose key operations changed `KEYS`, after which the older
    /// `KEYS` was put back in a copy of the directory, by how the open of
    /// that copy refused it.
    put_backs: BTreeMap<&'static str, u64>,
    pub(crate) findings: Vec<String>,
}

impl Summary {
    /// Prints the report, and its figures as `PROOF` lines named `proof`.
    pub(crate) fn print(&self, seed: u64, elapsed: Duration, proof: &str) {
        let cycles: u64 = self.per_mode.iter().map(|(_, f)| f.cycles).sum();
        println!(
            "crash-kill: {cycles} cycles in {:.1} s (seed {seed})",
            elapsed.as_secs_f64()
        );
        for (mode, f) in &self.per_mode {
            println!(
                "  {:<18} {:>5} cycles, {:>7} batches acknowledged ({} transactions, {} conflict retries), {:>4} in-flight batches found applied, {:>4} torn WAL tails repaired, {} keyspace drops, last batches {:?}",
                mode.name(),
                f.cycles,
                f.acked,
                f.transactions,
                f.retries,
                f.in_flight_applied,
                f.torn_tails,
                f.drops,
                f.last
            );
        }
        let total =
            |f: fn(&ModeFigures) -> u64| self.per_mode.iter().map(|(_, m)| f(m)).sum::<u64>();
        println!("transactions committed: {}", total(|f| f.transactions));
        println!("conflicts retried: {}", total(|f| f.retries));
        println!("keyspace drops: {}", total(|f| f.drops));
        println!(
            "keyspace drops in flight at the kill: {} ({} found done)",
            total(|f| f.drops_in_flight),
            total(|f| f.drops_in_flight_done)
        );
        let kills: Vec<_> = self.kills.iter().map(|(k, n)| format!("{k} {n}")).collect();
        println!("kills: {}", kills.join(", "));
        println!("lost acknowledged batches: {}", self.lost);
        println!("partial or wrong batches: {}", self.partial);
        println!("wrong scratch keyspaces: {}", self.wrong_keyspaces);
        println!("verify findings: {}", self.verify_findings);
        let put_backs: Vec<_> = self
            .put_backs
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "older KEYS put back (a copy of the directory): refused as {}",
            if put_backs.is_empty() {
                "- (no cycle changed KEYS)".to_string()
            } else {
                put_backs.join(", ")
            }
        );
        println!("findings: {}", self.findings.len());
        for f in &self.findings {
            println!("  FINDING: {f}");
        }
        // The same figures as `PROOF` lines for `cargo xtask proof` (see
        // `sealkv_testkit::proof`): one per mode, one for the checks.
        for (mode, f) in &self.per_mode {
            println!(
                "PROOF name={proof} part={} cases={} acked={} in_flight_applied={} torn_tails={} transactions={} retries={} drops={} drops_in_flight={} drops_in_flight_done={}",
                mode.name(),
                f.cycles,
                f.acked,
                f.in_flight_applied,
                f.torn_tails,
                f.transactions,
                f.retries,
                f.drops,
                f.drops_in_flight,
                f.drops_in_flight_done
            );
        }
        let kills: Vec<_> = self
            .kills
            .iter()
            .map(|(k, n)| format!(" kills_{}={n}", k.replace(' ', "_")))
            .collect();
        println!(
            "PROOF name={proof} part=checks lost={} wrong={} verify_findings={} findings={}{}",
            self.lost,
            self.partial + self.wrong_keyspaces,
            self.verify_findings,
            self.findings.len(),
            kills.concat()
        );
    }
}

/// What one child run told the parent.
#[derive(Debug, Default)]
struct Observed {
    /// The last batch acknowledged, per stream.
    acked: [Option<u64>; STREAMS],
    /// The last batch handed to the engine, per stream.
    attempted: [Option<u64>; STREAMS],
    markers: BTreeMap<&'static str, u64>,
    /// Transaction bodies run again after a conflict.
    retries: u64,
    /// What stream 0 did to the scratch keyspace, in order.
    scratch: Vec<scratch::Event>,
    opened_at: Option<Instant>,
    out_of_order: Option<String>,
}

impl Observed {
    fn take(&mut self, line: &str, now: Instant, next: &[u64; STREAMS]) {
        if line == "open" {
            self.opened_at = Some(now);
        } else if let Some((t, b)) = line.strip_prefix("ack ").and_then(stream_batch) {
            let want = self.acked[t].map_or(next[t], |a| a + 1);
            if b != want && self.out_of_order.is_none() {
                self.out_of_order = Some(format!("ack {t} {b} where {want} was expected"));
            }
            self.acked[t] = Some(b);
        } else if let Some((t, b)) = line.strip_prefix("begin write ").and_then(stream_batch) {
            self.attempted[t] = Some(b);
        } else if let Some((t, b)) = line.strip_prefix("begin txn ").and_then(stream_batch) {
            self.attempted[t] = Some(b);
        } else if let Some(n) = line.strip_prefix("retried ") {
            self.retries += n
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
        } else if let Some(event) = scratch::Event::parse(line) {
            self.scratch.push(event);
        }
        for m in MARKERS {
            if line.starts_with(m) {
                *self.markers.entry(m).or_default() += 1;
            }
        }
    }
}

/// `"T B"` as (stream, batch), if well formed.
fn stream_batch(s: &str) -> Option<(usize, u64)> {
    let (t, b) = s.split_once(' ')?;
    let t = t.parse::<usize>().ok().filter(|t| *t < STREAMS)?;
    Some((t, b.parse().ok()?))
}

/// Reads complete lines from `r` onto `tx`; a line cut by the kill (no
/// newline) is dropped.
fn pump(r: impl Read, tx: mpsc::Sender<(Instant, String)>) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) if buf.last() != Some(&b'\n') => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                if tx.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        }
    }
}

fn spawn_child(
    dir: &Path,
    mode: Mode,
    next: &[u64; STREAMS],
    seed: u64,
    anchored: bool,
) -> Result<Child, String> {
    let next: Vec<String> = next.iter().map(u64::to_string).collect();
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    Command::new(exe)
        .arg("child")
        .arg("--dir")
        .arg(dir)
        .args(["--mode", mode.name()])
        .args(["--next", &next.join(",")])
        .args(["--seed", &seed.to_string()])
        .args(anchored.then_some("--anchor"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))
}

/// How a cycle ended for the child.
struct Killed {
    observed: Observed,
    /// Why it was killed ("at begin flush", "timed out", ...), or `None` if
    /// it stopped by itself.
    reason: Option<String>,
    stderr: String,
}

/// Runs one child until the plan says kill, then SIGKILLs it.
fn run_child(
    dir: &Path,
    mode: Mode,
    next: &[u64; STREAMS],
    (seed, anchored): (u64, bool),
    plan: Plan,
) -> Result<Killed, String> {
    let mut child = spawn_child(dir, mode, next, seed, anchored)?;
    let start = Instant::now();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().ok_or("no stdout pipe")?;
    let mut err = child.stderr.take().ok_or("no stderr pipe")?;
    let reader = thread::spawn(move || pump(out, tx));
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut obs = Observed::default();
    let mut kill_at = match plan {
        Plan::AfterSpawn(d) => Some(start + d),
        _ => None,
    };
    let deadline = start + CYCLE_TIMEOUT;
    let reason = loop {
        let now = Instant::now();
        if kill_at.is_some_and(|t| now >= t) {
            break Some(plan.label());
        }
        if now >= deadline {
            break Some("timed out".to_string());
        }
        let until = kill_at.map_or(deadline, |t| t.min(deadline));
        match rx.recv_timeout(until.saturating_duration_since(now)) {
            Ok((at, line)) => {
                obs.take(&line, at, next);
                match plan {
                    Plan::AfterOpen(d) if line == "open" => kill_at = Some(at + d),
                    Plan::AtMarker { marker, nth, delay }
                        if kill_at.is_none()
                            && line.starts_with(marker)
                            && obs.markers.get(marker) == Some(&nth) =>
                    {
                        kill_at = Some(at + delay);
                    }
                    _ => {}
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break None,
        }
    };
    // SIGKILL on Unix: no destructor, no final sync runs in the child.
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    // Lines written before the kill are still in the pipe: acknowledgements
    // made before the kill count.
    while let Ok((at, line)) = rx.try_recv() {
        obs.take(&line, at, next);
    }
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Killed {
        observed: obs,
        reason,
        stderr,
    })
}

/// Reopens the database after a kill and checks it (the scratch keyspace
/// against the states in `scratch`).
fn reopen_and_check(
    dir: &Path,
    (mode, anchored): (Mode, bool),
    acked: &[u64],
    attempted: &[u64],
    scratch: &[Scratch],
) -> Checked {
    let mut out = Checked::default();
    let db = match mode
        .config(dir, anchored)
        .and_then(|c| Db::open_with_config(c).map_err(|e| e.to_string()))
    {
        Ok(db) => db,
        Err(e) => {
            out.open_failed = Some(format!("reopen failed: {e}"));
            return out;
        }
    };
    if let Ok(stats) = db.stats() {
        out.torn_tails = stats.torn_tails_repaired;
    }
    out.check = workload::check(&db, acked, attempted);
    out.scratch = scratch::check(&db, scratch);
    match db.verify() {
        Ok(report) => {
            for f in report.findings {
                out.verify
                    .push(format!("verify: {}: {}", f.file.display(), f.what));
            }
        }
        Err(e) => out.verify.push(format!("verify could not run: {e}")),
    }
    if let Err(e) = db.close() {
        out.open_failed = Some(format!("close after the check failed: {e}"));
    }
    out
}

/// After a cycle whose key operations changed `KEYS` (and the reopen
/// that recorded it): a copy of the directory with the older `KEYS` put
/// back and the header-only newest WAL segments removed must not open.
/// With an anchor (copied beside the copy) it is `Rollback`; without, an
/// older registry that can open no meta page (both sealed under a data key
/// it lacks) is `Corruption`, as nothing it opens proves it older. Returns
/// how it was refused; a finding if it opened or failed otherwise.
fn older_registry_refused(
    dir: &Path,
    mode: Mode,
    anchored: bool,
    older: &[u8],
) -> Result<&'static str, String> {
    let copy = dir.with_extension("put-back");
    let copied = (|| -> std::io::Result<()> {
        let _ = std::fs::remove_dir_all(&copy);
        copy_dir(dir, &copy)?;
        std::fs::write(copy.join("KEYS"), older)?;
        let mut segments: Vec<PathBuf> = std::fs::read_dir(copy.join("wal"))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        segments.sort();
        for seg in segments.into_iter().rev() {
            if std::fs::metadata(&seg)?.len() > 128 {
                break;
            }
            std::fs::remove_file(&seg)?;
        }
        if anchored {
            std::fs::copy(
                crate::mode::anchor_path(dir),
                crate::mode::anchor_path(&copy),
            )?;
        }
        Ok(())
    })();
    if let Err(e) = copied {
        return Err(format!(
            "could not copy the directory to put KEYS back: {e}"
        ));
    }
    let opened = mode.config(&copy, anchored).map(Db::open_with_config);
    let _ = std::fs::remove_dir_all(&copy);
    let _ = std::fs::remove_file(crate::mode::anchor_path(&copy));
    match opened? {
        Err(sealkv::Error::Rollback { .. }) => Ok("Rollback"),
        // Without an anchor, after a rotation and two commits, both meta
        // slots are sealed under a data key the older registry lacks:
        // nothing it can open proves it older, and the page file is
        // refused as damaged (the kind, naming the page file).
        Err(sealkv::Error::Corruption { file, .. })
            if !anchored && file == copy.join("data.sealkv") =>
        {
            Ok("Corruption (no meta page it can open)")
        }
        Err(e) => Err(format!("the older KEYS put back: refused with {e}")),
        Ok(db) => {
            drop(db);
            Err("the older KEYS put back was accepted as current".into())
        }
    }
}

/// Copies a database directory (not its lock file).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else if e.file_name() != "LOCK" {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

#[derive(Default)]
struct Checked {
    open_failed: Option<String>,
    check: workload::Checked,
    scratch: scratch::Found,
    verify: Vec<String>,
    torn_tails: u64,
}

/// Runs the cycles; stops at the first cycle with a finding.
pub(crate) fn run(args: &RunArgs) -> Result<Summary, String> {
    let mut temp = None;
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => {
            let t = tempfile::Builder::new()
                .prefix("sealkv-crash-")
                .tempdir()
                .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
            let path = t.path().to_path_buf();
            temp = Some(t);
            path
        }
    };
    let mut summary = Summary {
        per_mode: args
            .modes
            .iter()
            .map(|m| (*m, ModeFigures::default()))
            .collect(),
        ..Summary::default()
    };
    let mut rng = SplitMix64::new(args.seed);
    for cycle in 0..args.cycles {
        let slot = (cycle % args.modes.len() as u64) as usize;
        let (mode, mut figures) = summary.per_mode[slot].clone();
        let dir = base.join(mode.name());
        let plan = Plan::choose(&mut rng, mode.sealed());
        let next = figures.last.map(|l| l + 1);
        let older_keys = std::fs::read(dir.join("KEYS")).ok();
        let seed = (SplitMix64::mix(args.seed ^ cycle), args.anchored);
        let killed = run_child(&dir, mode, &next, seed, plan)?;
        let obs = &killed.observed;
        let acked: Vec<u64> = (0..STREAMS)
            .map(|t| obs.acked[t].unwrap_or(0).max(figures.last[t]))
            .collect();
        let attempted: Vec<u64> = (0..STREAMS)
            .map(|t| obs.attempted[t].unwrap_or(0).max(acked[t]))
            .collect();
        let reason = killed
            .reason
            .clone()
            .unwrap_or_else(|| "stopped by itself".into());
        *summary.kills.entry(reason.clone()).or_default() += 1;
        let mut findings = Vec::new();
        if killed.reason.is_none() {
            findings.push(format!(
                "the child stopped by itself: {}",
                killed.stderr.trim()
            ));
        }
        if let Some(why) = &obs.out_of_order {
            findings.push(format!("the child acknowledged out of order: {why}"));
        }
        let may_hold = scratch::allowed(figures.scratch, &obs.scratch);
        let checked = reopen_and_check(&dir, (mode, args.anchored), &acked, &attempted, &may_hold);
        if let Some(e) = checked.open_failed {
            findings.push(e);
        }
        summary.lost += checked.check.lost;
        summary.partial += checked.check.partial;
        summary.verify_findings += checked.verify.len() as u64;
        findings.extend(checked.check.findings);
        if let Some(f) = checked.scratch.finding {
            summary.wrong_keyspaces += 1;
            findings.push(f);
        }
        findings.extend(checked.verify);
        if let Some(older) = older_keys.filter(|_| mode.sealed())
            && std::fs::read(dir.join("KEYS")).ok().as_ref() != Some(&older)
        {
            match older_registry_refused(&dir, mode, args.anchored, &older) {
                Ok(how) => *summary.put_backs.entry(how).or_default() += 1,
                Err(f) => findings.push(f),
            }
        }
        figures.cycles += 1;
        figures.torn_tails += checked.torn_tails;
        figures.retries += obs.retries;
        figures.drops += obs
            .scratch
            .iter()
            .filter(|e| **e == scratch::Event::EndDrop)
            .count() as u64;
        figures.scratch = checked.scratch.state;
        if obs.scratch.last() == Some(&scratch::Event::BeginDrop) {
            figures.drops_in_flight += 1;
            figures.drops_in_flight_done += u64::from(figures.scratch == Scratch::Absent);
        }
        for (t, &acked) in acked.iter().enumerate() {
            figures.acked += acked - figures.last[t];
            if workload::transactional(t) {
                figures.transactions += acked - figures.last[t];
            }
            let found = checked.check.lasts.get(t).copied().unwrap_or(0);
            figures.in_flight_applied += found.saturating_sub(acked);
        }
        if args.verbose {
            eprintln!(
                "cycle {cycle} {}: killed {reason}, batches from {next:?}: acked to {acked:?}, attempted to {attempted:?}, found {:?}",
                mode.name(),
                checked.check.lasts
            );
        } else if (cycle + 1) % 100 == 0 {
            eprintln!("  {} cycles done", cycle + 1);
        }
        for (t, l) in checked.check.lasts.iter().enumerate() {
            figures.last[t] = *l;
        }
        summary.per_mode[slot].1 = figures;
        if !findings.is_empty() {
            for f in findings {
                summary.findings.push(format!(
                    "cycle {cycle} ({}, killed {reason}, batches from {next:?}, acked to {acked:?}, attempted to {attempted:?}): {f}",
                    mode.name()
                ));
            }
            if let Some(t) = temp.take() {
                // Keep the evidence.
                let kept = t.keep();
                summary
                    .findings
                    .push(format!("the databases are kept at {}", kept.display()));
            }
            break;
        }
    }
    Ok(summary)
}
