//! The HSM mode's key wrapper: a SoftHSM2 token when SoftHSM2 is installed,
//! else the in-process test wrapper ([`SoftwareWrapper`]).
//!
//! SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) once per process,
//! when its module loads, and this code base sets no environment variable
//! of its own process (that is `unsafe`). So a run with the HSM mode that
//! finds SoftHSM2 makes a token in a temporary directory and runs itself
//! again with `SOFTHSM2_CONF` naming it and [`MODULE_ENV`] naming the
//! module ([`reexec_with_token`]); that run and every child it starts
//! inherit both, and so open the same token. Without [`MODULE_ENV`] the
//! mode uses the test wrapper.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use sealkv::crypto::{KeyWrapper, MasterKey, SoftwareWrapper, WrapError};
use sealkv_pkcs11::{Pin, Pkcs11Wrapper};

/// The PKCS#11 module of the token the HSM mode uses; unset: the test
/// wrapper.
pub(crate) const MODULE_ENV: &str = "SEALKV_CRASH_PKCS11_MODULE";
/// The token's label.
const TOKEN: &str = "sealkv-crash";
/// The token's user PIN (test data: the token lives in a temporary
/// directory for one run).
const PIN: &str = "27182818";
/// The wrapping key's label in the token.
const KEY_LABEL: &str = "crash-master";
/// The test wrapper's fixed key (test data).
const SOFTWARE_KEY: [u8; 32] = [0x5b; 32];

/// The module named by [`MODULE_ENV`], if the run has a token.
fn module_from_env() -> Option<PathBuf> {
    std::env::var_os(MODULE_ENV).map(PathBuf::from)
}

/// The key wrapper of the HSM mode: the token's key, or the test wrapper.
pub(crate) fn wrapper() -> Result<Arc<dyn KeyWrapper>, String> {
    match module_from_env() {
        Some(module) => {
            let pin = Pin::new(PIN).map_err(|e| e.to_string())?;
            let w = Pkcs11Wrapper::new(&module, TOKEN, KEY_LABEL, pin)
                .map_err(|e| format!("PKCS#11 module {}: {e}", module.display()))?;
            Ok(Arc::new(w))
        }
        None => {
            let key = MasterKey::from_bytes(&SOFTWARE_KEY).map_err(|e| e.to_string())?;
            Ok(Arc::new(SoftwareWrapper::new("crash", key)))
        }
    }
}

/// What the HSM mode runs on, for the report.
pub(crate) fn describe() -> String {
    match module_from_env() {
        Some(module) => format!(
            "a SoftHSM2 token (module {}), AES key {KEY_LABEL:?} made in the token",
            module.display()
        ),
        None => "the in-process test wrapper (SoftwareWrapper; SoftHSM2 not used)".into(),
    }
}

/// Makes the wrapping key in the token if it is not there yet (the first
/// run on a fresh token). Nothing to do for the test wrapper.
pub(crate) fn ensure_key() -> Result<(), String> {
    let Some(module) = module_from_env() else {
        return Ok(());
    };
    let pin = Pin::new(PIN).map_err(|e| e.to_string())?;
    let w = Pkcs11Wrapper::new(&module, TOKEN, KEY_LABEL, pin).map_err(|e| e.to_string())?;
    match w.key_id() {
        Ok(_) => Ok(()),
        Err(WrapError::WrongKey(_)) => w
            .generate_key()
            .map_err(|e| format!("making the wrapping key: {e}")),
        Err(e) => Err(format!("the token: {e}")),
    }
}

/// Where SoftHSM2's module is, if installed.
fn softhsm_module() -> Option<PathBuf> {
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

/// A SoftHSM2 configuration in `dir` naming a fresh token directory with
/// one initialized token.
fn make_token(dir: &Path) -> Result<PathBuf, String> {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| format!("{}: {e}", tokens.display()))?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", conf.display()))?;
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", TOKEN])
        .args(["--so-pin", "31415926", "--pin", PIN])
        .output()
        .map_err(|e| format!("softhsm2-util: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(conf)
}

/// If this run has no token yet and SoftHSM2 is installed: makes a token in
/// a temporary directory and runs this binary again with `args` under it,
/// returning its exit code. `None`: run here (a token is already named, or
/// SoftHSM2 is missing and the test wrapper stands in).
pub(crate) fn reexec_with_token(args: &[String]) -> Option<Result<ExitCode, String>> {
    if module_from_env().is_some() {
        return None;
    }
    let module = softhsm_module()?;
    Command::new("softhsm2-util")
        .arg("--version")
        .output()
        .ok()?;
    let run = || -> Result<ExitCode, String> {
        let dir = tempfile::Builder::new()
            .prefix("sealkv-crash-token-")
            .tempdir()
            .map_err(|e| format!("cannot make a token directory: {e}"))?;
        let conf = make_token(dir.path())?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let status = Command::new(exe)
            .args(args)
            .env("SOFTHSM2_CONF", &conf)
            .env(MODULE_ENV, &module)
            .env(TOKEN_DIR_ENV, dir.path().join("tokens"))
            .status()
            .map_err(|e| format!("running under the token: {e}"))?;
        Ok(match status.code() {
            Some(0) => ExitCode::SUCCESS,
            Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
            None => ExitCode::FAILURE,
        })
    };
    Some(run())
}

/// The SoftHSM2 token directory of this run, if it has a token.
const TOKEN_DIR_ENV: &str = "SEALKV_CRASH_TOKEN_DIR";

/// The token's files as they were once the wrapping key was made.
///
/// SoftHSM2's file object store rewrites `token.object` in place at every
/// login, not atomically: a child SIGKILLed in that write leaves it empty,
/// and the token is then gone for every process (an outage, which the
/// engine reports as one: `Unavailable`, nothing lost). That is SoftHSM2's
/// file store, not the engine under test (a hardware token keeps its
/// objects across a client's death), so after each kill the parent puts
/// back any token file the kill damaged, and the report counts how often.
pub(crate) struct TokenSnapshot {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl TokenSnapshot {
    /// The token's files now, or `None` without a token.
    pub(crate) fn take() -> Result<Option<TokenSnapshot>, String> {
        let Some(dir) = std::env::var_os(TOKEN_DIR_ENV).map(PathBuf::from) else {
            return Ok(None);
        };
        let mut files = Vec::new();
        let mut dirs = vec![dir];
        while let Some(d) = dirs.pop() {
            let entries = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            for e in entries {
                let path = e.map_err(|e| e.to_string())?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let bytes =
                        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    files.push((path, bytes));
                }
            }
        }
        Ok(Some(TokenSnapshot { files }))
    }

    /// Puts back every token file a kill cut short (shorter than in the
    /// snapshot, or gone); returns how many. A file of the same length is
    /// left alone: SoftHSM2 bumps a counter in `token.object` at every
    /// login, so a whole file may differ from the snapshot in it.
    pub(crate) fn restore_damaged(&self) -> Result<u64, String> {
        let mut restored = 0;
        for (path, bytes) in &self.files {
            let len = std::fs::metadata(path).map_or(0, |m| m.len());
            if len < bytes.len() as u64 {
                std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                restored += 1;
            }
        }
        Ok(restored)
    }
}
