//! From the global options to an open database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::anchor::FileAnchor;
use sealkv::crypto::{CryptoProvider, EncryptionAlgorithm, KeySource, MasterKey, Passphrase};
use sealkv::{Config, Db};

use crate::args::Global;
use crate::exit::CliError;

/// The key the options name, if any. Never from a plain argument value.
pub(crate) fn key_source(g: &Global) -> Result<Option<KeySource>, CliError> {
    let chosen = [
        g.key_file.is_some(),
        g.key_env.is_some(),
        g.passphrase_env.is_some(),
        g.passphrase,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen > 1 {
        return Err(CliError::Usage(
            "give at most one of --key-file, --key-env, --passphrase-env, --passphrase".into(),
        ));
    }
    let key_err = |e: sealkv::crypto::KeyError| CliError::Key(e.to_string());
    if let Some(path) = &g.key_file {
        return Ok(Some(KeySource::Key(
            MasterKey::from_file(path).map_err(key_err)?,
        )));
    }
    if let Some(var) = &g.key_env {
        return Ok(Some(KeySource::Key(
            MasterKey::from_env(var).map_err(key_err)?,
        )));
    }
    if let Some(var) = &g.passphrase_env {
        let p = Passphrase::from_env(var).map_err(key_err)?;
        return Ok(Some(KeySource::passphrase(p)));
    }
    if g.passphrase {
        let value = rpassword::prompt_password("passphrase: ").map_err(|source| CliError::Io {
            path: PathBuf::from("/dev/tty"),
            source,
        })?;
        let p = Passphrase::new(value).map_err(key_err)?;
        return Ok(Some(KeySource::passphrase(p)));
    }
    Ok(None)
}

/// The algorithm option, if given.
pub(crate) fn algorithm(g: &Global) -> Result<Option<EncryptionAlgorithm>, CliError> {
    g.algorithm
        .as_deref()
        .map(|s| s.parse::<EncryptionAlgorithm>())
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The cipher implementations: `ring`'s when the tool is built with the
/// `ring` feature, RustCrypto's otherwise. Both write the same bytes, so a
/// database moves freely between the two builds.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "ring")]
    return Arc::new(CryptoProvider::ring());
    #[cfg(not(feature = "ring"))]
    Arc::new(CryptoProvider::rustcrypto())
}

/// The `--db` directory (required by the commands that call this).
pub(crate) fn db_dir(g: &Global) -> Result<&Path, CliError> {
    g.db.as_deref()
        .ok_or_else(|| CliError::Usage("this command needs --db DIR".into()))
}

/// `config` with the `--anchor-file` freshness anchor, if given.
pub(crate) fn with_anchor(config: Config, g: &Global) -> Config {
    match &g.anchor_file {
        Some(path) => config.freshness_anchor(Arc::new(FileAnchor::new(path))),
        None => config,
    }
}

/// The configuration for an existing database at `--db`.
pub(crate) fn config(g: &Global) -> Result<Config, CliError> {
    let mut config = Config::new(db_dir(g)?)
        .create_if_missing(false)
        .crypto_provider(provider());
    config = with_anchor(config, g);
    if let Some(source) = key_source(g)? {
        config = config.key_source(source);
    }
    if let Some(alg) = algorithm(g)? {
        config = config.encryption_algorithm(alg);
    }
    Ok(config)
}

/// Opens the existing database the options name.
pub(crate) fn open(g: &Global) -> Result<Db, CliError> {
    Ok(Db::open_with_config(config(g)?)?)
}

/// Opens it read-only.
pub(crate) fn open_read_only(g: &Global) -> Result<Db, CliError> {
    Ok(Db::open_with_config(config(g)?.read_only(true))?)
}
