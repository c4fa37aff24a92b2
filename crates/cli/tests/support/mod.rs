//! What the operator tests share: the binary, databases made through the
//! library, reading them back.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The `sealkv` binary under test: this build's, or the one
/// `SEALKV_TEST_BIN` names (to show that a test fails on another build).
pub(crate) fn bin() -> PathBuf {
    std::env::var_os("SEALKV_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin("sealkv"))
}

/// `sealkv` as an `assert_cmd` command.
pub(crate) fn sealkv() -> assert_cmd::Command {
    assert_cmd::Command::new(bin())
}

/// `sealkv` as a plain process (for redirections and limits).
pub(crate) fn process() -> std::process::Command {
    std::process::Command::new(bin())
}

/// Standard error of a finished command, as text.
pub(crate) fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

/// Standard output of a finished command, as text.
pub(crate) fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// A plaintext database at `dir` holding `records`, made with the library.
pub(crate) fn plaintext_db(dir: &Path, records: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let db = sealkv::Db::open(dir).unwrap();
    let mut batch = sealkv::WriteBatch::new();
    for (k, v) in records {
        batch.put(k, v);
    }
    db.write(&batch).unwrap();
    db.close().unwrap();
}

/// Every record of the plaintext database at `dir`, read with the library.
pub(crate) fn contents(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let db =
        sealkv::Db::open_with_config(sealkv::Config::new(dir).create_if_missing(false)).unwrap();
    let all = db.range::<&[u8]>(..).unwrap().map(|r| r.unwrap()).collect();
    db.close().unwrap();
    all
}

/// The entries of `dir`, by name, sorted.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs `sealkv ARGS` under resource limits (`prlimit`, util-linux): the
/// file-size limit in bytes, the open-file limit. With `ignore_xfsz`, a
/// write past the size limit fails with EFBIG instead of the process being
/// killed by SIGXFSZ (the shell's `trap "" XFSZ` is inherited through
/// exec).
pub(crate) fn limited(
    fsize: Option<u64>,
    nofile: Option<u64>,
    ignore_xfsz: bool,
    args: &[&std::ffi::OsStr],
) -> std::process::Output {
    assert!(
        std::process::Command::new("prlimit")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "these tests need prlimit (util-linux)"
    );
    let mut limits = Vec::new();
    if let Some(f) = fsize {
        limits.push(format!("--fsize={f}"));
    }
    if let Some(n) = nofile {
        limits.push(format!("--nofile={n}"));
    }
    let trap = if ignore_xfsz { "trap '' XFSZ; " } else { "" };
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{trap}exec prlimit {} -- \"$@\"", limits.join(" ")))
        .arg("sh")
        .arg(bin())
        .args(args)
        .output()
        .unwrap()
}

/// `&str`s as `OsStr`s.
pub(crate) fn os<'a>(args: &[&'a str]) -> Vec<&'a std::ffi::OsStr> {
    args.iter().map(|a| std::ffi::OsStr::new(*a)).collect()
}
