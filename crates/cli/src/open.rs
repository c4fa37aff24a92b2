//! From the global options to an open database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv::crypto::{AlgorithmId, CryptoProvider, KeySource, MasterKey, Passphrase};
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

/// The algorithms `--algorithm` offers: every one the crypto provider
/// holds (a registered plugin's too), by the name it is chosen by, with
/// its on-disk id.
pub(crate) fn algorithm_choices() -> Vec<(&'static str, AlgorithmId)> {
    provider().algorithms().map(|a| (a.name, a.id)).collect()
}

/// The parser of `--algorithm`: one of [`algorithm_choices`].
pub(crate) fn algorithm_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        algorithm_choices()
            .into_iter()
            .map(|(name, _)| clap::builder::PossibleValue::new(name)),
    )
}

/// The algorithm option, if given: any name the provider holds
/// ([`CryptoProvider::algorithms`] lists them).
pub(crate) fn algorithm(g: &Global) -> Result<Option<AlgorithmId>, CliError> {
    g.algorithm
        .as_deref()
        .map(|s| provider().find_algorithm(s))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The cryptography: `ring`'s when the tool is built with the `ring`
/// feature, RustCrypto's otherwise (both write the same bytes, so a
/// database moves freely between the two builds); with the `aws-lc`
/// feature, the aws-lc-rs AES-256-GCM plugin is registered too, under its
/// private id and name `aes-256-gcm-aws-lc`.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "ring")]
    let provider = CryptoProvider::ring();
    #[cfg(not(feature = "ring"))]
    let provider = CryptoProvider::rustcrypto();
    #[cfg(feature = "aws-lc")]
    let provider = match sealkv_aws_lc::register(provider.clone()) {
        Ok(with_plugin) => with_plugin,
        // A plugin that fails its self-test is left out: the tool still
        // opens every database sealed with a built-in algorithm, and one
        // sealed with the plugin fails with the provider's
        // UnsupportedAlgorithm error.
        Err(_) => provider,
    };
    Arc::new(provider)
}

/// The name of algorithm `id` in the tool's provider (`algorithm 0x8001`
/// for an id it does not hold).
pub(crate) fn algorithm_name(id: AlgorithmId) -> String {
    provider().algorithm(id).map_or_else(
        |_| format!("algorithm {:#06x}", id.0),
        |a| a.name.to_string(),
    )
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
