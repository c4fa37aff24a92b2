//! `sealkv bench`: the contract's JSON fields, the markdown report, `--only`, the
//! temporary databases cleaned up, and usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use assert_cmd::Command;

fn sealkv() -> Command {
    Command::cargo_bin("sealkv").unwrap()
}

const WORKLOADS: [&str; 8] = [
    "fillseq",
    "fillrandom",
    "readrandom-after-reopen",
    "readrandom-warm",
    "scan",
    "overwrite",
    "mix-90-10",
    "single-put-durable",
];

#[test]
fn json_has_one_object_per_workload_with_the_contract_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let out = sealkv()
        .args(["--db", tmp.path().to_str().unwrap()])
        .args([
            "bench",
            "--n",
            "300",
            "--rounds",
            "1",
            "--value-size",
            "100",
        ])
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

#[test]
fn zero_records_is_a_usage_error() {
    sealkv()
        .args(["bench", "--n", "0"])
        .assert()
        .code(2)
        .stdout("");
}
