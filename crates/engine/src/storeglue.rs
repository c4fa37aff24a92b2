//! Creating and opening the page file for the engine.

use std::path::Path;
use std::sync::Arc;

use sealkv_core_store::{OpenReport, Store, StoreError, StoreOptions};
use sealkv_crypto_envelope::{DbId, Keyring};

use crate::config::Config;
use crate::error::Error;

fn options(config: &Config, keyring: Option<Arc<Keyring>>, db_id: Option<DbId>) -> StoreOptions {
    StoreOptions {
        page_size: config.page_size,
        cache_bytes: usize::try_from(config.cache_size).unwrap_or(usize::MAX),
        keyring,
        db_id,
        read_only: config.read_only,
        initial_app_meta: Vec::new(),
    }
}

/// Creates the page file of a new database, its first meta page holding
/// `app_meta` (the engine's fields).
pub(crate) fn create(
    config: &Config,
    path: &Path,
    db_id: DbId,
    keyring: Option<Arc<Keyring>>,
    app_meta: Vec<u8>,
) -> Result<Store, Error> {
    let dir = config.path.as_path();
    let (store, _) = Store::create(
        config.vfs.clone(),
        path,
        StoreOptions {
            initial_app_meta: app_meta,
            ..options(config, keyring, Some(db_id))
        },
    )
    .map_err(|e| crate::errmap::store(dir, e))?;
    Ok(store)
}

/// How the page file says it is protected.
pub(crate) enum Opened {
    /// Opened.
    Store(Store, OpenReport),
    /// The file is encrypted and no keyring was given.
    Encrypted,
    /// The file is plaintext and a keyring was given.
    Plaintext,
}

/// Opens the page file of an existing database.
pub(crate) fn open(
    config: &Config,
    path: &Path,
    keyring: Option<Arc<Keyring>>,
) -> Result<Opened, Error> {
    let dir = config.path.as_path();
    let db_id = keyring.as_ref().map(|k| *k.db_id());
    match Store::open(config.vfs.clone(), path, options(config, keyring, db_id)) {
        Ok((store, report)) => Ok(Opened::Store(store, report)),
        Err(StoreError::EncryptedStore) => Ok(Opened::Encrypted),
        Err(StoreError::NotEncrypted) => Ok(Opened::Plaintext),
        Err(e) => Err(crate::errmap::store(dir, e)),
    }
}
