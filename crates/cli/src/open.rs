//! From the global options to an open database.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use sealkv::anchor::FileAnchor;
#[cfg(any(feature = "aws-lc", test))]
use sealkv::crypto::CryptoError;
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
        g.pkcs11_key.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen > 1 {
        return Err(CliError::Usage(
            "give at most one of --key-file, --key-env, --passphrase-env, --passphrase, --pkcs11-key"
                .into(),
        ));
    }
    let key_err = |e: sealkv::crypto::KeyError| CliError::Key(e.to_string());
    if let Some(label) = &g.pkcs11_key {
        return Ok(Some(KeySource::Wrapper(Arc::new(pkcs11_wrapper(
            g, label,
        )?))));
    }
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

/// The environment variable a token PIN is read from unless
/// `--pkcs11-pin-env` names another.
pub(crate) const DEFAULT_PIN_ENV: &str = "SEALKV_PKCS11_PIN";

/// The PKCS#11 wrapper of key `key_label` in the token the global options
/// name. The PIN comes from the environment (`--pkcs11-pin-env`, default
/// `SEALKV_PKCS11_PIN`) or, if that is not set, from a prompt; never from
/// an argument.
pub(crate) fn pkcs11_wrapper(
    g: &Global,
    key_label: &str,
) -> Result<sealkv_pkcs11::Pkcs11Wrapper, CliError> {
    let (Some(module), Some(token)) = (&g.pkcs11_module, &g.pkcs11_token) else {
        return Err(CliError::Usage(
            "a PKCS#11 key needs --pkcs11-module PATH and --pkcs11-token LABEL".into(),
        ));
    };
    let wrap_err = |e: sealkv::crypto::WrapError| CliError::Key(e.to_string());
    let var = g.pkcs11_pin_env.as_deref().unwrap_or(DEFAULT_PIN_ENV);
    let pin = if std::env::var_os(var).is_some() {
        sealkv_pkcs11::Pin::from_env(var).map_err(wrap_err)?
    } else {
        let value = zeroize::Zeroizing::new(
            rpassword::prompt_password(format!("PIN of token {token:?}: ")).map_err(|source| {
                CliError::Io {
                    path: PathBuf::from("/dev/tty"),
                    source,
                }
            })?,
        );
        sealkv_pkcs11::Pin::new(value.as_str()).map_err(wrap_err)?
    };
    sealkv_pkcs11::Pkcs11Wrapper::new(module, token, key_label, pin).map_err(wrapper_error)
}

/// A key wrapper's failure as a CLI error: an outage (a module that does
/// not load, a token not present or not answering) has its own exit code,
/// anything else is a key problem.
pub(crate) fn wrapper_error(e: sealkv::crypto::WrapError) -> CliError {
    match e {
        sealkv::crypto::WrapError::Unavailable(_) => CliError::KeyUnavailable(e.to_string()),
        other => CliError::Key(other.to_string()),
    }
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
/// private id and name `aes-256-gcm-aws-lc`. Built once per process, so a
/// plugin's self-test runs once.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    crypto().provider.clone()
}

/// Logs a warning if the build's cipher plugin was refused (shown unless
/// `-q`). Called once the log is set up: the provider is first built while
/// the arguments are parsed (`--algorithm` lists its algorithms), before
/// there is a log to warn on.
pub(crate) fn warn_if_plugin_refused() {
    if let Some(warning) = &crypto().plugin_refused {
        tracing::warn!("{warning}");
    }
}

/// The tool's provider, and why its plugin was left out, if it was.
struct Crypto {
    provider: Arc<CryptoProvider>,
    plugin_refused: Option<String>,
}

fn crypto() -> &'static Crypto {
    static CRYPTO: OnceLock<Crypto> = OnceLock::new();
    CRYPTO.get_or_init(|| {
        #[cfg(feature = "ring")]
        let provider = CryptoProvider::ring();
        #[cfg(not(feature = "ring"))]
        let provider = CryptoProvider::rustcrypto();
        #[cfg(feature = "aws-lc")]
        let (provider, plugin_refused) =
            with_plugin(provider, "aes-256-gcm-aws-lc", sealkv_aws_lc::register);
        #[cfg(not(feature = "aws-lc"))]
        let plugin_refused = None;
        Crypto {
            provider: Arc::new(provider),
            plugin_refused,
        }
    })
}

/// `provider` with the plugin `register` adds; if the provider refuses it
/// (a failed self-test, say), `provider` as it was and the warning to give,
/// naming the plugin and the reason. The tool goes on without it: every
/// database sealed with another algorithm still opens, and one sealed with
/// the plugin fails with the provider's `UnsupportedAlgorithm`.
#[cfg(any(feature = "aws-lc", test))]
fn with_plugin(
    provider: CryptoProvider,
    name: &str,
    register: impl FnOnce(CryptoProvider) -> Result<CryptoProvider, CryptoError>,
) -> (CryptoProvider, Option<String>) {
    match register(provider.clone()) {
        Ok(with_plugin) => (with_plugin, None),
        Err(e) => (
            provider,
            Some(format!("the {name} cipher plugin is left out: {e}")),
        ),
    }
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

/// `config` with the `--anchor-file` freshness anchor, if given.
pub(crate) fn with_anchor(config: Config, g: &Global) -> Config {
    match &g.anchor_file {
        Some(path) => config.freshness_anchor(Arc::new(FileAnchor::new(path))),
        None => config,
    }
}

/// Where the anchor of a database built elsewhere (`import`, `restore`) is
/// written until that database is in place: `PATH.new` beside `PATH`, so
/// that `PATH` holds the old record or the new one, whole, whatever stops
/// the command. A leftover from an earlier run is removed first.
pub(crate) fn staged_anchor(anchor: &Path) -> Result<PathBuf, CliError> {
    let mut name = anchor.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    let staged = anchor.with_file_name(name);
    match std::fs::remove_file(&staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::Io {
            path: staged,
            source: e,
        }),
        _ => Ok(staged),
    }
}

/// Renames the staged anchor over `anchor` and fsyncs its directory.
pub(crate) fn put_anchor_in_place(staged: &Path, anchor: &Path) -> Result<(), CliError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CliError::Io { path, source }
    };
    std::fs::rename(staged, anchor).map_err(io(anchor))?;
    let parent = match anchor.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io(parent))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sealkv::crypto::{Aead, AeadAlgorithm, AeadError, AlgorithmId, CryptoProvider, SecretKey};

    use super::with_plugin;

    /// A plugin with 24-byte nonces: its self-test fails on its shape,
    /// before any cipher is built.
    struct LongNonces;

    impl AeadAlgorithm for LongNonces {
        fn id(&self) -> AlgorithmId {
            AlgorithmId(0x8a77)
        }
        fn name(&self) -> &'static str {
            "long-nonces"
        }
        fn key_len(&self) -> usize {
            32
        }
        fn nonce_len(&self) -> usize {
            24
        }
        fn tag_len(&self) -> usize {
            16
        }
        fn new_aead(&self, _key: &SecretKey) -> Result<Box<dyn Aead>, AeadError> {
            Err(AeadError::InvalidLength)
        }
    }

    #[test]
    fn a_plugin_that_fails_its_self_test_is_left_out_with_a_warning() {
        let (provider, warning) = with_plugin(CryptoProvider::default(), "long-nonces", |p| {
            p.with_algorithm(Arc::new(LongNonces))
        });
        assert!(provider.algorithm(AlgorithmId(0x8a77)).is_err());
        assert_eq!(provider.algorithms().count(), 3, "the built-ins stay");
        let warning = warning.unwrap_or_default();
        assert!(
            warning.starts_with("the long-nonces cipher plugin is left out: "),
            "{warning}"
        );
        // The reason names the failed check.
        assert!(warning.contains("24-byte nonces"), "{warning}");
        assert_eq!(warning.lines().count(), 1);
    }

    #[test]
    fn a_plugin_that_passes_is_added_without_a_word() {
        let (provider, warning) = with_plugin(CryptoProvider::default(), "none", Ok);
        assert_eq!(provider.algorithms().count(), 3);
        assert_eq!(warning, None);
    }
}
