//! The PKCS#11 wrapper against a real token: SoftHSM2, with a token made in
//! a temporary directory for this run.
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) once, when the module
//! is initialized, for the whole process; so the test prepares the token
//! and then runs itself again as a child process with `SOFTHSM2_CONF` set.
//!
//! Without SoftHSM2 (the `softhsm2` package: its module and
//! `softhsm2-util`) the test says loudly that it is skipped, except under
//! CI (`CI` set to anything but `0` or `false`), where it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sealkv::crypto::{KeyError, KeySource, KeyWrapper, WrapError};
use sealkv::{Config, Db, Error};
use sealkv_backup::archive::{ArchiveError, ExportOptions, export, verify_archive};
use sealkv_pkcs11::{Pin, Pkcs11Wrapper};

#[path = "../../backup/tests/support/wrapped_lifecycle.rs"]
mod wrapped_lifecycle;

const TOKEN: &str = "sealkv-test";
const PIN: &str = "1234";
const CHILD: &str = "SEALKV_SOFTHSM_CHILD";
/// Which part of a test a child process runs.
const PHASE: &str = "SEALKV_SOFTHSM_PHASE";

/// Where SoftHSM2's module is, if installed.
fn module() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("SEALKV_PKCS11_MODULE") {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/lib/softhsm/libsofthsm2.so",
        "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/local/lib/softhsm/libsofthsm2.so",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// SoftHSM2's module and a token directory with one initialized token, or
/// `None` (after saying so) where SoftHSM2 is not installed.
fn prepare(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let util = Command::new("softhsm2-util").arg("--version").output();
    let (Some(module), Ok(_)) = (module(), util) else {
        assert!(
            !in_ci(),
            "SoftHSM2 is not installed, and CI must run the PKCS#11 tests \
             (apt-get install softhsm2)"
        );
        eprintln!(
            "\n*** SKIPPED: the PKCS#11 tests need SoftHSM2 (apt-get install softhsm2); \
             not installed here ***\n"
        );
        return None;
    };
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN])
        .args(["--so-pin", "87654321", "--pin", PIN])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "softhsm2-util --init-token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some((module, conf))
}

/// Runs `body` in a child process of this test binary with `SOFTHSM2_CONF`
/// naming a fresh token, or returns after saying SoftHSM2 is missing.
/// `test` is the calling test's name; in the child, `body` runs with the
/// module path and the test's temporary directory.
fn in_child(test: &str, body: fn(&Path, &Path)) {
    if let Some(dir) = std::env::var_os(CHILD) {
        return body(&module().unwrap(), Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some((module, conf)) = prepare(tmp.path()) else {
        return;
    };
    run_child(test, &module, &conf, tmp.path(), "");
}

/// Runs test `test` again in a child process under SoftHSM2 configuration
/// `conf`, with `phase` in [`PHASE`].
fn run_child(test: &str, module: &Path, conf: &Path, dir: &Path, phase: &str) {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", conf)
        .env("SEALKV_PKCS11_MODULE", module)
        .env(CHILD, dir)
        .env(PHASE, phase)
        .status()
        .unwrap();
    assert!(status.success(), "the test in the token failed");
}

/// A token taken away (pulled out, a network HSM down) after a database was
/// made under it and exported under it: opening the database and reading
/// the archive are outages, `Unavailable`, never `WrongKey` (which would
/// send an operator after the wrong problem).
#[test]
fn a_token_that_is_gone_is_an_outage_not_a_wrong_key() {
    const TEST: &str = "a_token_that_is_gone_is_an_outage_not_a_wrong_key";
    if let Some(dir) = std::env::var_os(CHILD) {
        let (module, db) = (module().unwrap(), Path::new(&dir).join("db"));
        let w = wrapper(&module, TOKEN, "master", PIN);
        let archive = Path::new(&dir).join("export.skva");
        if std::env::var(PHASE).unwrap() == "create" {
            w.generate_key().unwrap();
            let w = Arc::new(w);
            let opened = Db::open_with_config(Config::new(&db).key_wrapper(w.clone())).unwrap();
            opened.put(b"k", b"v").unwrap();
            let key = KeySource::Wrapper(w);
            export(
                &opened,
                &archive,
                &ExportOptions::sealed(key.clone()),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(
                verify_archive(&archive, Some(&key), &mut |_| {})
                    .unwrap()
                    .records,
                1
            );
            opened.close().unwrap();
            return;
        }
        // No token of that label on any slot now.
        match w.key_id() {
            Err(WrapError::Unavailable(msg)) => assert!(msg.contains(TOKEN), "{msg}"),
            other => panic!("key_id with the token gone: {other:?}"),
        }
        let w = Arc::new(w);
        match Db::open_with_config(Config::new(&db).key_wrapper(w.clone())) {
            Err(e) if is_outage(&e) => {}
            other => panic!("expected an outage, got {:?}", other.map(|_| ())),
        }
        // An archive sealed under the token: reading it is an outage too.
        match verify_archive(&archive, Some(&KeySource::Wrapper(w)), &mut |_| {}) {
            Err(ArchiveError::Key(KeyError::Wrap(WrapError::Unavailable(_)))) => {}
            other => panic!("archive with the token gone: {:?}", other.map(|_| ())),
        }
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let Some((module, conf)) = prepare(tmp.path()) else {
        return;
    };
    run_child(TEST, &module, &conf, tmp.path(), "create");
    let empty = tmp.path().join("no-tokens");
    std::fs::create_dir_all(&empty).unwrap();
    let gone = tmp.path().join("gone.conf");
    std::fs::write(
        &gone,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            empty.display()
        ),
    )
    .unwrap();
    run_child(TEST, &module, &gone, tmp.path(), "gone");
}

#[test]
fn a_database_under_a_softhsm_key_lives_a_whole_life() {
    in_child(
        "a_database_under_a_softhsm_key_lives_a_whole_life",
        in_token,
    );
}

/// A PKCS#11 login belongs to the application and the token, not to one
/// session: two databases opening at once (or an open beside a rekey) share
/// it, and no call may end it under another.
#[test]
fn concurrent_unwraps_in_one_token_all_succeed() {
    in_child(
        "concurrent_unwraps_in_one_token_all_succeed",
        |module, _| {
            let w = Arc::new(wrapper(module, TOKEN, "shared", PIN));
            w.generate_key().unwrap();
            let key = sealkv_crypto_envelope::SecretKey::from_bytes(&[7; 32]).unwrap();
            let wrapped = w.wrap(&key, b"db one").unwrap();
            // The context is authenticated: another database's does not open it.
            match w.unwrap(&wrapped, b"db two") {
                Err(WrapError::WrongKey(_)) => {}
                other => panic!("another context: {:?}", other.map(|_| ())),
            }
            const ROUNDS: usize = 200;
            let barrier = std::sync::Barrier::new(2);
            let failures: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..2)
                    .map(|_| {
                        let (w, wrapped, barrier) = (w.clone(), &wrapped, &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            (0..ROUNDS)
                                .filter_map(|_| match w.unwrap(wrapped, b"db one") {
                                    Ok(k) if k.expose() == [7; 32] => None,
                                    Ok(_) => Some("another key".to_string()),
                                    Err(e) => Some(e.to_string()),
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap())
                    .collect()
            });
            assert!(
                failures.is_empty(),
                "{} of {} concurrent unwraps failed, first: {}",
                failures.len(),
                2 * ROUNDS,
                failures[0]
            );
        },
    );
}

/// Whether `e` says the wrapper is unavailable (an outage).
fn is_outage(e: &Error) -> bool {
    matches!(
        e,
        Error::Registry(sealkv::crypto::registry::RegistryError::Key(
            sealkv::crypto::KeyError::Wrap(WrapError::Unavailable(_))
        ))
    )
}

fn wrapper(module: &Path, token: &str, key: &str, pin: &str) -> Pkcs11Wrapper {
    Pkcs11Wrapper::new(module, token, key, Pin::new(pin).unwrap()).unwrap()
}

fn open(dir: &Path, w: Pkcs11Wrapper) -> Result<Db, Error> {
    Db::open_with_config(Config::new(dir).key_wrapper(Arc::new(w)))
}

/// Runs in the child, with `SOFTHSM2_CONF` naming the test's token.
fn in_token(module: &Path, dir: &Path) {
    let module = module.to_path_buf();
    let root = dir.join("run");
    std::fs::create_dir_all(&root).unwrap();

    // The wrapping keys are made in the token, never extractable.
    let first = wrapper(&module, TOKEN, "master-1", PIN);
    first.generate_key().unwrap();
    assert!(matches!(first.generate_key(), Err(WrapError::Failed(_))));
    let second = wrapper(&module, TOKEN, "master-2", PIN);
    second.generate_key().unwrap();
    assert!(first.key_is_sealed_in_token().unwrap());
    assert!(second.key_is_sealed_in_token().unwrap());
    let id = first.key_id().unwrap();
    assert!(
        id.starts_with("label=master-1;id=") && id.len() > 20,
        "{id}"
    );
    assert_ne!(id, second.key_id().unwrap());
    assert!(!format!("{first:?}").contains(PIN));

    // The whole life: create, write, reopen, verify, rotate, re-encrypt,
    // back up, restore, export, import, rekey between keys and raw.
    wrapped_lifecycle::run(
        &root,
        Arc::new(wrapper(&module, TOKEN, "master-1", PIN)),
        Arc::new(second),
        Arc::new(wrapper(&module, TOKEN, "no-such-key", PIN)),
    );

    // The registry records the wrapper and the key id; the token's key
    // never appears.
    let keys = std::fs::read(root.join("db/KEYS")).unwrap();
    assert!(keys.windows(id.len()).any(|w| w == id.as_bytes()));

    // A token label on no slot is an outage, not the wrong key.
    let db = root.join("db");
    match open(&db, wrapper(&module, "no-such-token", "master-1", PIN)) {
        Err(e) if is_outage(&e) => {}
        other => panic!("expected an outage, got {:?}", other.map(|_| ())),
    }
    // Another key label in the token, another PIN: the wrong key.
    for w in [
        wrapper(&module, TOKEN, "no-such-key", PIN),
        wrapper(&module, TOKEN, "master-1", "9999"),
    ] {
        match open(&db, w) {
            Err(Error::WrongKey) => {}
            other => panic!("expected WrongKey, got {:?}", other.map(|_| ())),
        }
    }
    // The right one still opens.
    open(&db, first).unwrap().close().unwrap();

    // A module that is not there is a clear error naming it.
    let missing = Path::new("/nonexistent/libpkcs11-missing.so");
    match Pkcs11Wrapper::new(missing, TOKEN, "master-1", Pin::new(PIN).unwrap()) {
        Err(WrapError::Unavailable(msg)) => {
            assert!(msg.contains("/nonexistent/libpkcs11-missing.so"), "{msg}");
        }
        other => panic!("missing module: {:?}", other.map(|_| ())),
    }
    // A raw key never opens the wrapped database.
    let raw = KeySource::Key(sealkv::crypto::MasterKey::from_bytes(&[1; 32]).unwrap());
    assert!(matches!(
        Db::open_with_config(Config::new(&db).key_source(raw)),
        Err(Error::Registry(_))
    ));
}
