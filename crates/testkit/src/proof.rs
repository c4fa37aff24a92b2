//! The summary line of a long proof, for `cargo xtask proof`.
//!
//! Each proof that `docs/RELIABILITY.md` quotes (the fault sweep, the
//! crash points of the fuzz regressions, the tamper matrices, ...) prints
//! one line per part on standard output:
//!
//! ```text
//! PROOF name=faults part=aes-256-gcm cases=580 reached=580 surfaced=571 lost=0
//! ```
//!
//! `name` is the proof, `part` a mode or a matrix within it, and every
//! other field a count. `cargo xtask proof` runs the proofs, collects these
//! lines (and no other output) and sums each count over the parts of a
//! proof into its summary table. Counts are what the run measured — a
//! proof prints its line before it asserts on them, so a failed run still
//! shows what it found.

use std::fmt::Write as _;

/// Prints `PROOF name=NAME part=PART k=v ...` on standard output.
///
/// # Panics
///
/// If a name, part or count key holds a space or an `=` (the line would not
/// parse).
#[allow(clippy::print_stdout)]
pub fn print_proof(name: &str, part: &str, counts: &[(&str, u64)]) {
    let ok = |s: &str| !s.is_empty() && !s.contains([' ', '=', '\n']);
    assert!(ok(name) && ok(part), "proof name {name:?} or part {part:?}");
    let mut line = format!("PROOF name={name} part={part}");
    for (k, v) in counts {
        assert!(ok(k), "count key {k:?}");
        write!(line, " {k}={v}").unwrap();
    }
    println!("{line}");
}

/// Whether the long proofs run at full size: `SEALKV_PROOF=full` (set by
/// `cargo xtask proof`; without it they run the reduced size CI runs).
pub fn full_size() -> bool {
    std::env::var("SEALKV_PROOF").is_ok_and(|v| v == "full")
}

/// Counts for one `PROOF` line, added to as a test checks its cases.
///
/// ```
/// let mut t = sealkv_testkit::proof::Tally::new("tamper-store", "swapped-pages");
/// t.case("detected");
/// t.print(); // PROOF name=tamper-store part=swapped-pages cases=1 detected=1
/// ```
#[derive(Debug, Clone)]
pub struct Tally {
    name: &'static str,
    part: String,
    counts: Vec<(&'static str, u64)>,
}

impl Tally {
    /// No case yet, for proof `name`, part `part`.
    pub fn new(name: &'static str, part: impl Into<String>) -> Self {
        Tally {
            name,
            part: part.into(),
            counts: vec![("cases", 0)],
        }
    }

    /// Adds `n` to count `key`.
    pub fn add(&mut self, key: &'static str, n: u64) {
        match self.counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v += n,
            None => self.counts.push((key, n)),
        }
    }

    /// One case checked, with its outcome (`detected`, `cut`, ...).
    pub fn case(&mut self, outcome: &'static str) {
        self.add("cases", 1);
        self.add(outcome, 1);
    }

    /// Prints the line.
    pub fn print(&self) {
        print_proof(self.name, &self.part, &self.counts);
    }
}
