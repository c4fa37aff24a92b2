//! A database under an in-process [`SoftwareWrapper`]: the whole life of a
//! wrapped-key database (see `support/wrapped_lifecycle.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sealkv::crypto::registry::RegistryError;
use sealkv::crypto::{
    KeyError, KeySource, KeyWrapper, MasterKey, SecretKey, SoftwareWrapper, WrapError,
};
use sealkv::{Config, Db, Error, SyncMode};

#[path = "support/wrapped_lifecycle.rs"]
mod wrapped_lifecycle;

fn wrapper(id: &str, byte: u8) -> Arc<SoftwareWrapper> {
    Arc::new(SoftwareWrapper::new(
        id,
        MasterKey::from_bytes(&[byte; 32]).unwrap(),
    ))
}

#[test]
fn a_database_under_a_software_wrapper_lives_a_whole_life() {
    let tmp = tempfile::tempdir().unwrap();
    wrapped_lifecycle::run(
        tmp.path(),
        wrapper("first", 1),
        wrapper("second", 2),
        wrapper("first", 3),
    );
}

/// A software wrapper that can be switched off, as an HSM outage would.
struct Flaky {
    inner: SoftwareWrapper,
    down: AtomicBool,
}

impl KeyWrapper for Flaky {
    fn kind(&self) -> &str {
        self.inner.kind()
    }
    fn key_id(&self) -> Result<String, WrapError> {
        self.check()?;
        self.inner.key_id()
    }
    fn wrap(&self, key: &SecretKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        self.check()?;
        self.inner.wrap(key, context)
    }
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretKey, WrapError> {
        self.check()?;
        self.inner.unwrap(wrapped, context)
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

impl Flaky {
    fn check(&self) -> Result<(), WrapError> {
        if self.down.load(Ordering::SeqCst) {
            Err(WrapError::Unavailable("the HSM does not answer".into()))
        } else {
            Ok(())
        }
    }
}

#[test]
fn an_outage_of_the_wrapper_fails_opens_but_not_an_open_database() {
    let tmp = tempfile::tempdir().unwrap();
    let flaky = Arc::new(Flaky {
        inner: SoftwareWrapper::new("hsm", MasterKey::from_bytes(&[9; 32]).unwrap()),
        down: AtomicBool::new(false),
    });
    let config = |dir: &std::path::Path| {
        Config::new(dir)
            .sync_mode(SyncMode::Always)
            .key_wrapper(flaky.clone())
    };
    let dir = tmp.path().join("db");
    let db = Db::open_with_config(config(&dir)).unwrap();
    db.put(b"before", b"the outage").unwrap();

    flaky.down.store(true, Ordering::SeqCst);
    // The open database keeps working: its keys are in memory.
    db.put(b"during", b"the outage").unwrap();
    db.rotate_data_key().unwrap();
    db.put(b"after-rotation", b"still fine").unwrap();
    db.reencrypt(&mut |_| std::ops::ControlFlow::Continue(()))
        .unwrap();
    db.backup_to(&tmp.path().join("backup"), &mut |_| {})
        .unwrap();
    assert!(db.verify().unwrap().is_clean());
    // A rekey to the wrapper needs it, and fails before writing anything.
    let generation = db.stats().unwrap().encryption.registry_generation;
    assert!(db.rekey(KeySource::Wrapper(flaky.clone())).is_err());
    assert_eq!(
        db.stats().unwrap().encryption.registry_generation,
        generation
    );
    db.close().unwrap();
    // Opening needs the wrapper: a typed error, not WrongKey.
    match Db::open_with_config(config(&dir)) {
        Err(Error::Registry(RegistryError::Key(KeyError::Wrap(WrapError::Unavailable(_))))) => {}
        other => panic!("open during the outage: {:?}", other.map(|_| ())),
    }
    flaky.down.store(false, Ordering::SeqCst);
    let db = Db::open_with_config(config(&dir)).unwrap();
    for k in [&b"before"[..], b"during", b"after-rotation"] {
        assert!(db.get(k).unwrap().is_some());
    }
    assert!(db.verify().unwrap().is_clean());
    let backup = Db::open_with_config(config(&tmp.path().join("backup"))).unwrap();
    assert!(backup.get(b"during").unwrap().is_some());
}
