//! `sealkv bench`: the contract's JSON fields, the markdown report with every
//! workload, the disk-space table, `--only`, the temporary databases cleaned
//! up, and usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

/// `sealkv --db DIR bench --n N --rounds R --value-size 100`.
fn bench_in(dir: &std::path::Path, n: &str, rounds: &str) -> Command {
    let mut c = sealkv();
    c.args(["--db", dir.to_str().unwrap()]).args([
        "bench",
        "--n",
        n,
        "--rounds",
        rounds,
        "--value-size",
        "100",
    ]);
    c
}

/// Every workload, in the order it runs.
const WORKLOADS: [&str; 22] = [
    "fillseq",
    "fillrandom",
    "readrandom-after-reopen",
    "readrandom-warm",
    "scan",
    "overwrite",
    "syncwrite",
    "ycsb-a",
    "ycsb-b",
    "ycsb-c",
    "ycsb-d",
    "ycsb-e",
    "ycsb-f",
    "txn-increment",
    "txn-transfer",
    "mix-90-10",
    "coll-insert",
    "coll-lookup",
    "coll-range",
    "coll-insert-sealed",
    "coll-lookup-sealed",
    "coll-range-sealed",
];

/// The collections workloads, which SQLite runs of the peers.
#[cfg(feature = "peers")]
const COLL_WORKLOADS: [&str; 6] = [
    "coll-insert",
    "coll-lookup",
    "coll-range",
    "coll-insert-sealed",
    "coll-lookup-sealed",
    "coll-range-sealed",
];

/// The other workloads the peers run too (all but sealkv's own three).
#[cfg(feature = "peers")]
const PEER_WORKLOADS: [&str; 13] = [
    "fillrandom",
    "readrandom-after-reopen",
    "scan",
    "overwrite",
    "syncwrite",
    "ycsb-a",
    "ycsb-b",
    "ycsb-c",
    "ycsb-d",
    "ycsb-e",
    "ycsb-f",
    "txn-increment",
    "txn-transfer",
];

#[test]
fn json_has_one_object_per_workload_with_the_contract_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bench_in(tmp.path(), "300", "1")
        .arg("--json")
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["workload"].as_str().unwrap())
        .collect();
    assert_eq!(names, WORKLOADS);
    for o in &objects {
        let plain = o["plaintext_ops_per_sec"].as_f64().unwrap();
        let enc = o["encrypted_ops_per_sec"].as_f64().unwrap();
        let ratio = o["ratio"].as_f64().unwrap();
        assert!(plain > 0.0 && enc > 0.0, "{o}");
        assert!((ratio - enc / plain).abs() < 1e-9 * ratio.max(1.0), "{o}");
        assert_eq!(o["records"], 300);
        assert_eq!(o["value_len"], 100);
        let modes = o["modes_ops_per_sec"].as_object().unwrap();
        assert_eq!(modes["aes-256-gcm"].as_f64(), Some(enc));
        assert_eq!(modes["plaintext"].as_f64(), Some(plain));
        assert!(modes.contains_key("chacha20-poly1305"));
        assert_eq!(
            modes.contains_key("aes-256-gcm (ring)"),
            cfg!(feature = "ring")
        );
        // The latency row carries its medians in milliseconds.
        let w = o["workload"].as_str().unwrap();
        let latency = o.get("modes_median_latency_ms");
        assert_eq!(latency.is_some(), w == "syncwrite", "{o}");
        if let Some(l) = latency {
            let ms = l["aes-256-gcm"].as_f64().unwrap();
            assert!((ms - 1e3 / enc).abs() < 1e-6 * ms, "{o}");
        }
        // The load and the overwrite carry each database's bytes on disk.
        let bytes = o.get("modes_allocated_bytes");
        assert_eq!(
            bytes.is_some(),
            w == "fillrandom" || w == "overwrite",
            "{o}"
        );
        if let Some(b) = bytes {
            // 300 records of 116 bytes at least.
            assert!(b["plaintext"].as_u64().unwrap() >= 300 * 116, "{o}");
            assert!(b["aes-256-gcm"].as_u64().unwrap() >= 300 * 116, "{o}");
        }
        assert!(o.get("peers_ops_per_sec").is_none(), "{o}");
    }
    // The temporary databases under --db are gone.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn the_report_is_a_markdown_table_with_ratios_and_peak_rss() {
    let out = sealkv()
        .args(["bench", "--records", "200", "--rounds", "1"])
        .args(["--value-size", "64"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.starts_with("Machine: "), "{text}");
    assert!(text.contains("### 200 records, 64-byte values"), "{text}");
    assert!(
        text.contains("64 MiB memtable, 256 MiB page cache, 4 KiB pages"),
        "the report names the default cache: {text}"
    );
    assert!(
        text.contains("(configured bounds: 256 MiB page cache + 64 MiB memtable)"),
        "{text}"
    );
    for w in WORKLOADS {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {w} |")))
            .unwrap_or_else(|| panic!("no row for {w}: {text}"));
        // Plaintext, then each encrypted mode with its ratio.
        assert!(row.matches(" (").count() >= 2, "{row}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("Peak RSS of the whole process") && l.contains(" MiB ")),
        "{text}"
    );
}

/// A tiny run (300 records, one round, two modes) through every workload:
/// each has its row and its line in the legend, and the disk-space table
/// has a row per mode.
#[test]
fn a_tiny_run_goes_through_every_workload_and_names_each() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bench_in(tmp.path(), "300", "1")
        .args(["--only", "aes-256-gcm"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("| workload | plaintext | aes-256-gcm |"),
        "{text}"
    );
    for w in WORKLOADS {
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("| {w} |")))
            .collect();
        assert_eq!(rows.len(), 1, "{w}: {text}");
        // A figure for plaintext, and one with its ratio for AES-256-GCM.
        let cells: Vec<&str> = rows[0].split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 5, "{}", rows[0]);
        assert!(
            cells[2].chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{}",
            rows[0]
        );
        assert!(cells[3].contains(" ("), "{}", rows[0]);
        assert!(
            text.lines().any(|l| l.starts_with(&format!("- `{w}`"))),
            "no legend for {w}: {text}"
        );
    }
    assert!(
        text.contains("| syncwrite |") && text.contains(" ms |"),
        "{text}"
    );
    assert!(
        text.contains("#### Disk space (300 records, 100-byte values)"),
        "{text}"
    );
    for engine in ["sealkv plaintext", "sealkv aes-256-gcm"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {engine} |")))
            .unwrap_or_else(|| panic!("no space row for {engine}: {text}"));
        assert_eq!(row.matches(" MB |").count(), 2, "{row}");
    }
    assert!(!text.contains("#### Against"), "{text}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn only_keeps_plaintext_and_the_named_mode_and_refuses_unknown_names() {
    let out = sealkv()
        .args(["bench", "--n", "100", "--rounds", "1", "--value-size", "10"])
        .args(["--only", "chacha20-poly1305", "--json"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for line in text.lines() {
        let o: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut modes: Vec<&String> = o["modes_ops_per_sec"].as_object().unwrap().keys().collect();
        modes.sort();
        assert_eq!(modes, ["chacha20-poly1305", "plaintext"], "{o}");
    }
    sealkv()
        .args(["bench", "--only", "rot13"])
        .assert()
        .code(2)
        .stdout("");
}

/// `--suite` times one suite alone: its workloads' rows and legend lines,
/// no other's; the disk-space table only with the key-value load; an
/// unknown suite is a usage error.
#[test]
fn suite_times_only_its_workloads_and_refuses_unknown_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (people, records): (Vec<&str>, Vec<&str>) =
        WORKLOADS.into_iter().partition(|w| w.starts_with("coll-"));
    for (suite, want, other) in [
        ("collections", &people, &records),
        ("key-value", &records, &people),
    ] {
        let out = bench_in(tmp.path(), "200", "1")
            .args(["--only", "aes-256-gcm", "--suite", suite, "--json"])
            .assert()
            .success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let names: Vec<String> = text
            .lines()
            .map(|l| {
                let o: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(o["encrypted_ops_per_sec"].as_f64().unwrap() > 0.0, "{o}");
                o["workload"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(&names, want, "{suite}");

        let out = bench_in(tmp.path(), "200", "1")
            .args(["--only", "aes-256-gcm", "--suite", suite])
            .assert()
            .success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        for w in want.iter() {
            assert!(text.contains(&format!("| {w} |")), "{suite} {w}: {text}");
            assert!(text.contains(&format!("- `{w}`")), "{suite} {w}: {text}");
        }
        for w in other.iter() {
            assert!(!text.contains(&format!("| {w} |")), "{suite} {w}: {text}");
            assert!(!text.contains(&format!("- `{w}`")), "{suite} {w}: {text}");
        }
        assert_eq!(
            text.contains("#### Disk space"),
            suite == "key-value",
            "{suite}: {text}"
        );
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    sealkv()
        .args(["bench", "--suite", "everything"])
        .assert()
        .code(2)
        .stdout("");
}

#[test]
fn zero_records_is_a_usage_error() {
    sealkv()
        .args(["bench", "--n", "0"])
        .assert()
        .code(2)
        .stdout("");
}

/// `--peers` in a build with feature `peers`: the table against redb,
/// SQLite, LMDB and fjall, the best peer, the space table and the JSON
/// fields.
#[cfg(feature = "peers")]
#[test]
fn peers_adds_a_table_against_every_peer_with_the_best_and_ratios() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bench_in(tmp.path(), "1200", "2")
        .args(["--peers", "--only", "aes-256-gcm"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("#### Against redb, SQLite, LMDB and fjall (1200 records, 100-byte values)"),
        "{text}"
    );
    let header = text
        .lines()
        .find(|l| l.starts_with("| workload | sealkv plaintext |"))
        .unwrap_or_else(|| panic!("no peers table: {text}"));
    assert!(
        header.contains(" redb | SQLite | LMDB | fjall | best peer | aes-256-gcm ÷ best peer |"),
        "{header}"
    );
    let columns = header.matches('|').count();
    for w in PEER_WORKLOADS {
        // The sealkv table's row, then the peers table's (more columns).
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("| {w} |")))
            .collect();
        assert_eq!(rows.len(), 2, "{w}: {text}");
        let peers_row = rows[1];
        assert_eq!(peers_row.matches('|').count(), columns, "{peers_row}");
        let cells: Vec<&str> = peers_row.split('|').map(str::trim).collect();
        // The best peer is one of them; the last cell a ratio (shown to two
        // decimals: a debug build on a loaded machine may round to 0.00).
        let best = cells[cells.len() - 3];
        assert!(
            ["redb", "SQLite", "LMDB", "fjall"].contains(&best),
            "{peers_row}"
        );
        let ratio: f64 = cells[cells.len() - 2].parse().unwrap();
        assert!(ratio.is_finite() && ratio >= 0.0, "{peers_row}");
    }
    // The collections rows: SQLite's figure, a dash for the other peers.
    for w in COLL_WORKLOADS {
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("| {w} |")))
            .collect();
        assert_eq!(rows.len(), 2, "{w}: {text}");
        let cells: Vec<&str> = rows[1].split('|').map(str::trim).collect();
        assert_eq!(cells[cells.len() - 3], "SQLite", "{}", rows[1]);
        assert_eq!(
            cells.iter().filter(|c| **c == "-").count(),
            3,
            "{}",
            rows[1]
        );
    }
    // Workloads the peers do not run have no row in their table.
    for w in ["fillseq", "readrandom-warm", "mix-90-10"] {
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with(&format!("| {w} |")))
                .count(),
            1,
            "{w}"
        );
    }
    for engine in ["redb", "SQLite", "LMDB", "fjall"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("| {engine} |")) && l.ends_with(" MB |"))
            .unwrap_or_else(|| panic!("no space row for {engine}: {text}"));
        assert_eq!(row.matches(" MB |").count(), 2, "{row}");
    }

    let out = bench_in(tmp.path(), "300", "1")
        .args(["--peers", "--json", "--only", "aes-256-gcm"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for line in text.lines() {
        let o: serde_json::Value = serde_json::from_str(line).unwrap();
        let w = o["workload"].as_str().unwrap();
        let coll = COLL_WORKLOADS.contains(&w);
        let ran = PEER_WORKLOADS.contains(&w) || coll;
        assert_eq!(o.get("peers_ops_per_sec").is_some(), ran, "{o}");
        if !ran {
            continue;
        }
        let peers = o["peers_ops_per_sec"].as_object().unwrap();
        let mut names: Vec<&String> = peers.keys().collect();
        names.sort();
        if coll {
            assert_eq!(names, ["SQLite"], "{o}");
        } else {
            assert_eq!(names, ["LMDB", "SQLite", "fjall", "redb"], "{o}");
        }
        let (best_name, best) = peers
            .iter()
            .map(|(n, x)| (n.as_str(), x.as_f64().unwrap()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(best > 0.0, "{o}");
        assert_eq!(o["best_peer"], best_name, "{o}");
        assert_eq!(o["best_peer_ops_per_sec"].as_f64(), Some(best), "{o}");
        let enc = o["encrypted_ops_per_sec"].as_f64().unwrap();
        let r = o["encrypted_over_best_peer"].as_f64().unwrap();
        assert!((r - enc / best).abs() < 1e-9 * r.max(1.0), "{o}");
        if w == "fillrandom" || w == "overwrite" {
            let bytes = o["peers_allocated_bytes"].as_object().unwrap();
            assert_eq!(bytes.len(), 4, "{o}");
            assert!(bytes.values().all(|b| b.as_u64().unwrap() > 0), "{o}");
        }
        if w == "syncwrite" {
            assert_eq!(o["peers_median_latency_ms"].as_object().unwrap().len(), 4);
        }
    }
    // The peers' databases are gone too.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

/// `--peers` in a build without feature `peers`: a usage error naming it,
/// before any work.
#[cfg(not(feature = "peers"))]
#[test]
fn peers_without_the_feature_is_a_usage_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sealkv()
        .args(["--db", tmp.path().to_str().unwrap()])
        .args(["bench", "--n", "100", "--peers"])
        .assert()
        .code(2)
        .stdout("");
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("--features peers"), "{err}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn cache_mib_sets_the_page_cache_and_the_report_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = bench_in(tmp.path(), "200", "1")
        .args(["--only", "aes-256-gcm", "--cache-mib", "3"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("3 MiB page cache from --cache-mib"), "{text}");
    assert!(
        text.contains("(configured bounds: 3 MiB page cache"),
        "{text}"
    );
    assert!(!text.contains("64 MiB page cache"), "{text}");
}
