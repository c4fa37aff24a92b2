//! From the global options to an open database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::crypto::{
    AlgorithmId, CryptoProvider, EncryptionAlgorithm, KeySource, MasterKey, Passphrase,
};
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
        return Ok(Some(KeySource::Key(key_file(path)?)));
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

/// Reads a master key file, warning first if group or others may read it
/// (a key file should be its owner's alone: `chmod 600`).
pub(crate) fn key_file(path: &Path) -> Result<MasterKey, CliError> {
    warn_if_shared(path);
    MasterKey::from_file(path).map_err(|e| CliError::Key(e.to_string()))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "the key file {} can be read by {} (mode {mode:03o}): make it its owner's alone with `chmod 600 {}`",
                path.display(),
                if mode & 0o007 != 0 {
                    "others"
                } else {
                    "its group"
                },
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path) {}

/// The algorithms `--algorithm` offers: every one the crypto provider has,
/// by name (the built-ins by their canonical names, a registered plugin by
/// its own), with its on-disk id.
pub(crate) fn algorithm_choices() -> Vec<(&'static str, AlgorithmId)> {
    provider()
        .algorithms()
        .map(|a| {
            let name = EncryptionAlgorithm::from_id(a.id()).map_or(a.name(), |b| b.name());
            (name, a.id())
        })
        .collect()
}

/// The parser of `--algorithm`: one of [`algorithm_choices`].
pub(crate) fn algorithm_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        algorithm_choices()
            .into_iter()
            .map(|(name, _)| clap::builder::PossibleValue::new(name)),
    )
}

/// The algorithm option, if given, as the configuration takes it.
pub(crate) fn algorithm(g: &Global) -> Result<Option<EncryptionAlgorithm>, CliError> {
    let Some(name) = g.algorithm.as_deref() else {
        return Ok(None);
    };
    let id = algorithm_choices()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, id)| id)
        .ok_or_else(|| CliError::Usage(format!("unknown algorithm {name:?}")))?;
    EncryptionAlgorithm::from_id(id).map(Some).ok_or_else(|| {
        CliError::Usage(format!(
            "{name} is offered by the crypto provider but a new database can only be created with a built-in algorithm"
        ))
    })
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

/// The configuration for an existing database at `--db`.
pub(crate) fn config(g: &Global) -> Result<Config, CliError> {
    let mut config = Config::new(db_dir(g)?)
        .create_if_missing(false)
        .crypto_provider(provider());
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
