//! `cargo xtask proof [--quick] [--cycles N] [--seed S]`: every long proof
//! the reliability and security docs quote, in one run, with one summary
//! table.
//!
//! The proofs: the crash-kill harness (`crates/crashtest`), alone, with
//! a freshness anchor file beside each database, in compaction mode
//! (compactions and range deletes under the kill), and under an HSM key (a
//! SoftHSM2 token where installed; a quarter of the cycles, the share of
//! each mode of the plain run), the fault sweep
//! at every position in every mode (`it::faults`), the power cuts at every
//! disk operation of the fuzz regressions and of the keyspace seeds
//! (`it::fuzz`), the tamper matrices
//! (engine, backups and archives, page file, WAL), and the key-hygiene
//! scan (every key and passphrase of a full workload searched for in every
//! log line and error text). Each prints `PROOF`
//! lines (`name=… part=… key=count …`, see `sealkv_testkit::proof`); this
//! collects them — and nothing else of the output — sums each count over
//! the parts of a proof, checks the counts that must hold (nothing lost or
//! wrong, every fault reached, every planned crash fired), and prints the
//! table. A full run (release build, `SEALKV_PROOF=full`,
//! `SEALKV_TAMPER_FULL=1`, 1,000 crash-kill cycles) also writes the table,
//! with its date and commit, into `docs/RELIABILITY.md` between the
//! `<!-- proof:begin -->` and `<!-- proof:end -->` markers.
//!
//! `--quick` runs the same tests at the reduced size, in the debug build,
//! as many at once as there are cores (`--jobs N` to choose): what `cargo
//! xtask ci` runs, so no proof can rot unseen. Everything is built first,
//! so a proof's seconds are its run's.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::root;

/// How a proof is run.
enum Run {
    /// Tests of a package's test target whose names contain `filter`.
    Test {
        package: &'static str,
        target: &'static str,
        filter: &'static str,
        /// Extra environment of the full run.
        full_env: &'static [(&'static str, &'static str)],
    },
    /// The crash-kill harness: its CI test `test` (debug) when quick, the
    /// release binary otherwise, with `args`, `--seed` and the run's
    /// `--cycles` divided by `cycles_divisor`.
    CrashKill {
        test: &'static str,
        args: &'static [&'static str],
        cycles_divisor: u64,
    },
}

/// One proof.
struct Proof {
    /// The `name=` of its `PROOF` lines.
    name: &'static str,
    /// What it is, for the table.
    title: &'static str,
    run: Run,
}

const PROOFS: &[Proof] = &[
    Proof {
        name: "crash-kill",
        title: "crash-kill harness (cycles)",
        run: Run::CrashKill {
            test: "fifty_two_kill_cycles_lose_no_acknowledged_batch",
            args: &["--mode", "all"],
            cycles_divisor: 1,
        },
    },
    Proof {
        name: "crash-kill-anchor",
        title: "crash-kill harness with a freshness anchor (cycles)",
        run: Run::CrashKill {
            test: "kill_cycles_with_a_freshness_anchor_reopen_without_a_false_rollback",
            args: &["--mode", "all", "--anchor"],
            cycles_divisor: 1,
        },
    },
    Proof {
        name: "crash-kill-compact",
        title: "crash-kill harness with compactions and range deletes (cycles)",
        run: Run::CrashKill {
            test: "kill_cycles_inside_compactions_and_range_deletes_lose_nothing",
            args: &["--mode", "all", "--compact"],
            cycles_divisor: 1,
        },
    },
    Proof {
        name: "crash-kill-hsm",
        title: "crash-kill harness under an HSM key, SoftHSM2 where installed (cycles)",
        // The share of the cycles each mode of `all` gets.
        run: Run::CrashKill {
            test: "kill_cycles_under_an_hsm_key_lose_nothing_and_refuse_an_older_registry",
            args: &["--mode", "hsm"],
            cycles_divisor: 4,
        },
    },
    Proof {
        name: "faults",
        title: "fault sweep (positions)",
        run: Run::Test {
            package: "sealkv",
            target: "it",
            filter: "faults::fault_positions_",
            full_env: &[],
        },
    },
    Proof {
        name: "fuzz-crash-points",
        title: "fuzz regressions, power cut at each disk operation (runs)",
        run: Run::Test {
            package: "sealkv",
            target: "it",
            filter: "fuzz::regressions_survive_power_cuts_at_their_disk_operations",
            full_env: &[],
        },
    },
    Proof {
        name: "fuzz-keyspace-crash-points",
        title: "fuzz keyspace seeds, power cut inside keyspace and transaction operations (runs)",
        run: Run::Test {
            package: "sealkv",
            target: "it",
            filter: "fuzz::keyspace_operations_survive_power_cuts_inside_them",
            full_env: &[],
        },
    },
    Proof {
        name: "tamper-engine",
        title: "tamper matrix, database (cases)",
        run: Run::Test {
            package: "sealkv",
            target: "it",
            filter: "tamper::tamper_matrix_never_returns_wrong_data",
            full_env: &[("SEALKV_TAMPER_FULL", "1")],
        },
    },
    Proof {
        name: "tamper-backup",
        title: "tamper matrix, backups and archives (cases)",
        run: Run::Test {
            package: "sealkv-backup",
            target: "tamper",
            filter: "tampered_backups_and_archives_are_refused_and_restore_nothing",
            full_env: &[("SEALKV_TAMPER_FULL", "1")],
        },
    },
    Proof {
        name: "key-hygiene",
        title: "key hygiene (secrets searched for)",
        run: Run::Test {
            package: "sealkv-backup",
            target: "hygiene",
            filter: "no_key_byte_reaches_a_log_line_an_error_or_debug_output_and_files_are_private",
            full_env: &[],
        },
    },
    Proof {
        name: "tamper-store",
        title: "page-file tamper tests (cases)",
        run: Run::Test {
            package: "sealkv-core-store",
            target: "store",
            filter: "tamper::",
            full_env: &[],
        },
    },
    Proof {
        name: "tamper-wal",
        title: "WAL tamper tests (cases)",
        run: Run::Test {
            package: "sealkv-core-wal",
            target: "wal",
            filter: "tamper::",
            full_env: &[],
        },
    },
];

/// The test name filters of the proofs: `cargo xtask ci` skips them in its
/// plain `cargo test` and runs them through `proof --quick` instead.
pub(crate) fn test_filters() -> Vec<&'static str> {
    PROOFS
        .iter()
        .map(|p| match p.run {
            Run::Test { filter, .. } => filter,
            Run::CrashKill { test, .. } => test,
        })
        .collect()
}

/// What `cargo xtask proof` was asked.
struct Args {
    quick: bool,
    cycles: u64,
    seed: u64,
    /// Proofs run at once (their output is then shown as each ends).
    jobs: usize,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        quick: false,
        cycles: 1000,
        seed: 20261201,
        jobs: 0,
    };
    let mut it = args.iter();
    let number = |v: Option<&String>, what: &str| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a number"))?
            .parse()
            .map_err(|_| format!("{what} needs a number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--cycles" => a.cycles = number(it.next(), "--cycles")?,
            "--seed" => a.seed = number(it.next(), "--seed")?,
            "--jobs" => a.jobs = number(it.next(), "--jobs")?.max(1) as usize,
            other => {
                return Err(format!(
                    "proof: unknown argument {other:?} (usage: cargo xtask proof [--quick] [--cycles N] [--seed S] [--jobs N])"
                ));
            }
        }
    }
    if a.jobs == 0 {
        // The reduced size shares the cores (several proofs are one test,
        // one thread); the full run times each proof alone.
        a.jobs = if a.quick {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            1
        };
    }
    Ok(a)
}

/// The command (program, arguments, environment) that runs `proof`.
fn command(proof: &Proof, a: &Args) -> (Vec<String>, Vec<(String, String)>) {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut env = Vec::new();
    let args = match (&proof.run, a.quick) {
        (Run::CrashKill { test, .. }, true) => s(&[
            "test",
            "-p",
            "sealkv-crashtest",
            "--test",
            "crash",
            test,
            "--",
            "--nocapture",
        ]),
        (
            Run::CrashKill {
                args,
                cycles_divisor,
                ..
            },
            false,
        ) => {
            let mut v = s(&[
                "run",
                "--release",
                "--quiet",
                "-p",
                "sealkv-crashtest",
                "--bin",
                "sealkv-crash",
                "--",
            ]);
            v.extend(s(args));
            let cycles = (a.cycles / cycles_divisor).max(1);
            v.extend(["--cycles".into(), cycles.to_string()]);
            v.extend(["--seed".into(), a.seed.to_string()]);
            v
        }
        (
            Run::Test {
                package,
                target,
                filter,
                full_env,
            },
            quick,
        ) => {
            let mut v = s(&["test"]);
            if !quick {
                v.push("--release".into());
                env.push(("SEALKV_PROOF".to_string(), "full".to_string()));
                env.extend(full_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            }
            v.extend(s(&[
                "-p",
                package,
                "--test",
                target,
                filter,
                "--",
                "--nocapture",
            ]));
            v
        }
    };
    (args, env)
}

/// The command that builds what `proof` runs (so a proof's time is its
/// run's, not the build's).
fn build_command(proof: &Proof, a: &Args) -> Vec<String> {
    let (args, _) = command(proof, a);
    if args[0] == "run" {
        return [
            "build",
            "--release",
            "-p",
            "sealkv-crashtest",
            "--bin",
            "sealkv-crash",
        ]
        .map(String::from)
        .to_vec();
    }
    // `cargo test [--release] -p P --test T FILTER -- --nocapture`: the
    // same without the filter and the harness's arguments.
    let mut b: Vec<String> = args.iter().take_while(|x| *x != "--").cloned().collect();
    b.pop();
    b.push("--no-run".into());
    b
}

/// One proof's outcome.
struct Outcome {
    /// Counts summed over the parts.
    counts: BTreeMap<String, u64>,
    parts: usize,
    seconds: f64,
    /// Why it failed, if it did.
    failure: Option<String>,
}

/// A `PROOF` line: its name and counts (the part is only told apart).
fn parse_line(line: &str) -> Result<(String, BTreeMap<String, u64>), String> {
    let mut name = None;
    let mut counts = BTreeMap::new();
    for token in line.split_whitespace().skip(1) {
        let (k, v) = token
            .split_once('=')
            .ok_or_else(|| format!("not key=value: {token:?} in {line:?}"))?;
        match k {
            "name" => name = Some(v.to_string()),
            "part" => {}
            _ => {
                let n = v
                    .parse()
                    .map_err(|_| format!("{k}={v:?} is no count in {line:?}"))?;
                counts.insert(k.to_string(), n);
            }
        }
    }
    Ok((name.ok_or_else(|| format!("no name in {line:?}"))?, counts))
}

/// Runs `proof` and collects its `PROOF` lines. Its output goes to stderr:
/// as it comes with `stream`, else all at once when it ends.
fn run_one(proof: &Proof, a: &Args, stream: bool) -> Outcome {
    let (args, env) = command(proof, a);
    let shown: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={v} "))
        .chain(std::iter::once(format!("cargo {}", args.join(" "))))
        .collect();
    let mut log = vec![format!("\n== {} ==\n$ {}", proof.title, shown.concat())];
    let show = |line: String, log: &mut Vec<String>| {
        if stream {
            eprintln!("{line}");
        } else {
            log.push(line);
        }
    };
    if stream {
        eprintln!("{}", log.remove(0));
    }
    let started = Instant::now();
    let mut out = Outcome {
        counts: BTreeMap::new(),
        parts: 0,
        seconds: 0.0,
        failure: None,
    };
    // The test harness's stderr (cargo's progress, panics) is merged into
    // the same log when proofs run side by side.
    let stderr = if stream {
        Stdio::inherit()
    } else {
        Stdio::piped()
    };
    let child = Command::new("cargo")
        .args(&args)
        .envs(env)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            out.failure = Some(format!("cannot run cargo: {e}"));
            return out;
        }
    };
    let errors = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            BufReader::new(e)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        })
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let parsed = line.starts_with("PROOF ").then(|| parse_line(&line));
            show(line, &mut log);
            let Some(parsed) = parsed else { continue };
            match parsed {
                Ok((name, counts)) if name == proof.name => {
                    out.parts += 1;
                    for (k, v) in counts {
                        *out.counts.entry(k).or_default() += v;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    out.failure.get_or_insert(e);
                }
            }
        }
    }
    if let Some(errors) = errors {
        log.extend(errors.join().unwrap_or_default());
    }
    let status = child.wait();
    out.seconds = started.elapsed().as_secs_f64();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            out.failure = Some(format!("the run failed ({s})"));
        }
        Err(e) => out.failure = Some(format!("cannot wait for cargo: {e}")),
    }
    if out.failure.is_none() {
        out.failure = check(&out);
    }
    if !stream {
        eprintln!("{}", log.join("\n"));
    }
    out
}

/// The counts every proof must show.
fn check(o: &Outcome) -> Option<String> {
    let get = |k: &str| o.counts.get(k).copied();
    let cases = get("cases").unwrap_or(0);
    if o.parts == 0 || cases == 0 {
        return Some("no PROOF line with cases".into());
    }
    for k in ["lost", "wrong", "verify_findings", "findings", "found"] {
        if let Some(n) = get(k).filter(|n| *n > 0) {
            return Some(format!("{k} = {n}"));
        }
    }
    for k in ["reached", "crashed"] {
        if let Some(n) = get(k).filter(|n| *n != cases) {
            return Some(format!("{k} = {n} of {cases} cases"));
        }
    }
    None
}

/// Thousands separated by commas.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Today's date (UTC), as YYYY-MM-DD.
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The commit the tree is at (with `-dirty` if it has changes).
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!("{head}{}", if dirty { "-dirty" } else { "" })
}

/// The summary table (Markdown).
fn table(results: &[(&Proof, Outcome)], a: &Args) -> String {
    let size = if a.quick {
        "reduced size (`--quick`, debug build)".to_string()
    } else {
        format!(
            "full size (release build; crash-kill {} cycles, seed {})",
            grouped(a.cycles),
            a.seed
        )
    };
    let mut t = format!(
        "`cargo xtask proof{}` on {} at commit `{}`, {size}:\n\n",
        if a.quick { " --quick" } else { "" },
        today(),
        commit()
    );
    t.push_str("| proof | cases | detected | lost | wrong | other counts | seconds | result |\n");
    t.push_str("|---|---|---|---|---|---|---|---|\n");
    let col = |o: &Outcome, k: &str| o.counts.get(k).map_or("—".to_string(), |n| grouped(*n));
    for (p, o) in results {
        let other: Vec<String> = o
            .counts
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "cases" | "detected" | "lost" | "wrong"))
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), grouped(*v)))
            .collect();
        let result = match &o.failure {
            None => "ok".to_string(),
            Some(f) => format!("**FAILED**: {f}"),
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} |\n",
            p.title,
            col(o, "cases"),
            col(o, "detected"),
            col(o, "lost"),
            col(o, "wrong"),
            other.join(", "),
            o.seconds,
            result
        ));
    }
    t
}

const BEGIN: &str = "<!-- proof:begin -->";
const END: &str = "<!-- proof:end -->";

/// Writes `table` into docs/RELIABILITY.md between the markers.
fn write_doc(table: &str) -> Result<(), String> {
    let path = root().join("docs").join("RELIABILITY.md");
    let doc = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        return Err(format!(
            "{} has no {BEGIN} ... {END} section",
            path.display()
        ));
    };
    if e < b {
        return Err(format!("{}: {END} before {BEGIN}", path.display()));
    }
    let new = format!("{}{BEGIN}\n\n{table}\n{}", &doc[..b], &doc[e..]);
    std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    eprintln!("xtask: wrote the table into {}", path.display());
    Ok(())
}

/// `cargo xtask proof`.
pub(crate) fn proof(args: &[String]) -> Result<(), String> {
    let a = parse(args)?;
    for p in PROOFS {
        let b = build_command(p, &a);
        let refs: Vec<&str> = b.iter().map(String::as_str).collect();
        crate::run("cargo", &refs, &[])?;
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<Option<Outcome>>> =
        std::sync::Mutex::new(PROOFS.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..a.jobs.min(PROOFS.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(p) = PROOFS.get(i) else { break };
                    let o = run_one(p, &a, a.jobs == 1);
                    done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(o);
                }
            });
        }
    });
    let results: Vec<(&Proof, Outcome)> = PROOFS
        .iter()
        .zip(done.into_inner().unwrap_or_else(|e| e.into_inner()))
        .filter_map(|(p, o)| Some((p, o?)))
        .collect();
    let t = table(&results, &a);
    println!("\n{t}");
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, o)| o.failure.is_some())
        .map(|(p, _)| p.name)
        .collect();
    if !failed.is_empty() {
        return Err(format!("proofs failed: {}", failed.join(", ")));
    }
    if !a.quick {
        write_doc(&t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_line_parses_and_bad_ones_do_not() {
        let (name, counts) =
            parse_line("PROOF name=faults part=aes-256-gcm cases=580 reached=580 lost=0").unwrap();
        assert_eq!(name, "faults");
        assert_eq!(counts["cases"], 580);
        assert_eq!(counts.len(), 3);
        assert!(parse_line("PROOF name=x part=y cases=many").is_err());
        assert!(parse_line("PROOF part=y cases=1").is_err());
        assert!(parse_line("PROOF name=x cases").is_err());
    }

    #[test]
    fn the_checks_catch_what_must_not_happen() {
        let outcome = |pairs: &[(&str, u64)]| Outcome {
            counts: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            parts: 1,
            seconds: 0.0,
            failure: None,
        };
        assert!(check(&outcome(&[("cases", 3), ("reached", 3), ("lost", 0)])).is_none());
        assert!(check(&outcome(&[("cases", 3), ("reached", 2)])).is_some());
        assert!(check(&outcome(&[("cases", 3), ("wrong", 1)])).is_some());
        assert!(check(&outcome(&[("cases", 0)])).is_some());
        assert!(check(&outcome(&[("cases", 2), ("crashed", 1)])).is_some());
    }

    #[test]
    fn numbers_and_dates_read_well() {
        assert_eq!(grouped(2189), "2,189");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn the_build_step_builds_what_the_run_runs() {
        let a = Args {
            quick: false,
            cycles: 5,
            seed: 1,
            jobs: 1,
        };
        let by_name = |name| PROOFS.iter().find(|p| p.name == name).unwrap();
        let faults = by_name("faults");
        let (run, env) = command(faults, &a);
        assert_eq!(
            run.join(" "),
            "test --release -p sealkv --test it faults::fault_positions_ -- --nocapture"
        );
        assert_eq!(env, vec![("SEALKV_PROOF".to_string(), "full".to_string())]);
        assert_eq!(
            build_command(faults, &a).join(" "),
            "test --release -p sealkv --test it --no-run"
        );
        assert_eq!(build_command(by_name("crash-kill"), &a)[0], "build");
        let anchored = command(by_name("crash-kill-anchor"), &a).0;
        assert!(anchored.iter().any(|x| x == "--anchor"), "{anchored:?}");
        assert_eq!(build_command(by_name("crash-kill-anchor"), &a)[0], "build");
        let hsm = command(by_name("crash-kill-hsm"), &a).0.join(" ");
        assert!(
            hsm.ends_with("sealkv-crash -- --mode hsm --cycles 1 --seed 1"),
            "{hsm}"
        );
        let compact = command(by_name("crash-kill-compact"), &a).0;
        assert!(compact.iter().any(|x| x == "--compact"), "{compact:?}");
    }

    #[test]
    fn every_test_proof_has_a_filter_for_ci_to_skip() {
        assert_eq!(test_filters().len(), PROOFS.len());
    }
}
