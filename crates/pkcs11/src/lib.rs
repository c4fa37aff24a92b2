//! A sealkv [`KeyWrapper`] over PKCS#11: the master key is an AES-256 key
//! inside a hardware security module (or SoftHSM2), created there
//! non-extractable and sensitive, and it never leaves it.
//!
//! The token encrypts the registry's random root key with AES-256-GCM
//! (`CKM_AES_GCM`, a fresh 96-bit IV from the operating system's CSPRNG,
//! a 128-bit tag, and the registry's wrap context as AAD: the format
//! version, database id, wrapper kind and key id, so a wrapped key copied
//! into another database does not unwrap) and decrypts it at open: one
//! `C_Decrypt` per database open, one `C_Encrypt` per create or rekey.
//! The stored form is `IV (12) || ciphertext (32) || tag (16)`. A wrapped
//! key that does not authenticate under the token's key is
//! [`WrapError::WrongKey`], as are a present token that holds no key of
//! that label and a PIN the token refuses; a module that does not load, a
//! token label on no slot (a token pulled out, a network HSM down), a
//! handle invalidated under a call, or a token that does not answer, is
//! [`WrapError::Unavailable`]: an outage, not a wrong key.
//!
//! Each call opens its own session, logs in (the login is the
//! application's, shared by all its sessions on the token) and closes the
//! session again, never logging out under another thread: an HSM
//! that went away and came back is picked up by the next call, and a
//! database that is already open never calls the token again (its data
//! keys are in memory).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use sealkv_pkcs11::{Pin, Pkcs11Wrapper};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let wrapper = Pkcs11Wrapper::new(
//!     "/usr/lib/softhsm/libsofthsm2.so",
//!     "sealkv",
//!     "db-master",
//!     Pin::from_env("SEALKV_PKCS11_PIN")?,
//! )?;
//! wrapper.generate_key()?; // once: creates the AES key in the token
//! let db = sealkv::Db::open_with_config(
//!     sealkv::Config::new("./data").key_wrapper(Arc::new(wrapper)),
//! )?;
//! # drop(db);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use parking_lot::Mutex;
use sealkv_crypto_envelope::{KEY_LEN, KeyWrapper, SecretKey, WrapError};
use zeroize::Zeroizing;

/// The wrapper kind recorded in registries.
pub const WRAPPER_KIND: &str = "pkcs11";

/// The IV length of the stored form.
const IV_LEN: usize = 12;
/// The tag length of the stored form.
const TAG_LEN: usize = 16;
/// The stored form's length: IV, wrapped key, tag.
pub const WRAPPED_LEN: usize = IV_LEN + KEY_LEN + TAG_LEN;
/// The CKA_ID length `generate_key` draws.
const KEY_ID_LEN: usize = 16;

/// A token PIN: zeroized on drop, never printed, never an argument on a
/// command line.
pub struct Pin(AuthPin);

impl Pin {
    /// A PIN; an empty one is refused.
    pub fn new(pin: impl Into<String>) -> Result<Self, WrapError> {
        let pin = Zeroizing::new(pin.into());
        if pin.is_empty() {
            return Err(WrapError::Unavailable("the token PIN is empty".into()));
        }
        Ok(Pin(AuthPin::from(pin.as_str())))
    }

    /// The PIN in environment variable `var`. The variable is left in the
    /// environment (removing it is `unsafe` while other threads may read
    /// the environment): the process's owner can still read it in
    /// `/proc/PID/environ`.
    pub fn from_env(var: &str) -> Result<Self, WrapError> {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| {
            WrapError::Unavailable(format!(
                "environment variable {var} (the token PIN) is not set or not Unicode"
            ))
        })?);
        Self::new(value.as_str())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

/// PKCS#11 contexts already initialized in this process, by module path: a
/// module is initialized once, and never finalized while a wrapper might
/// still use it (`C_Initialize` is process-wide).
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

fn context(module: &Path) -> Result<Pkcs11, WrapError> {
    let mut contexts = CONTEXTS.lock();
    if let Some((_, ctx)) = contexts.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    if !module.is_file() {
        return Err(WrapError::Unavailable(format!(
            "PKCS#11 module {} does not exist or is not a file",
            module.display()
        )));
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        WrapError::Unavailable(format!(
            "cannot load PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(WrapError::Unavailable(format!(
                "PKCS#11 module {} does not initialize: {e}",
                module.display()
            )));
        }
    }
    contexts.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// A token's answer as a wrapper error. `what` says what was asked.
fn token_error(what: &str, e: CkError) -> WrapError {
    match e {
        CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _) => {
            WrapError::WrongKey(format!("{what}: the token refused the PIN"))
        }
        CkError::Pkcs11(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange, _) => {
            WrapError::WrongKey(format!(
                "{what}: the wrapped key does not open under this key"
            ))
        }
        CkError::Pkcs11(RvError::KeyTypeInconsistent, _) => {
            WrapError::WrongKey(format!("{what}: the token key is not an AES key"))
        }
        CkError::Pkcs11(RvError::KeyFunctionNotPermitted | RvError::MechanismInvalid, _) => {
            WrapError::Failed(format!(
                "{what}: the token key does not permit AES-GCM encryption and decryption ({e})"
            ))
        }
        // A handle that stopped being valid between lookup and use is the
        // token changing under the call (removed, reset): an outage.
        CkError::Pkcs11(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid, _) => {
            WrapError::Unavailable(format!("{what}: the token changed under the call ({e})"))
        }
        other => WrapError::Unavailable(format!("{what}: {other}")),
    }
}

/// A [`KeyWrapper`] whose key is an AES-256 key in a PKCS#11 token. See the
/// [crate docs](crate).
pub struct Pkcs11Wrapper {
    ctx: Pkcs11,
    module: PathBuf,
    token_label: String,
    key_label: String,
    pin: Pin,
}

impl fmt::Debug for Pkcs11Wrapper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Wrapper")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .field("pin", &self.pin)
            .finish()
    }
}

/// A logged-in session, closed on drop and never logged out: a PKCS#11
/// login belongs to the application and the token, shared by all its
/// sessions, so a `C_Logout` here would log out another thread's session in
/// the middle of its call. The token ends the login when the application's
/// last session on it closes.
struct LoggedIn(Session);

impl Pkcs11Wrapper {
    /// A wrapper under key `key_label` of the token labelled `token_label`
    /// in PKCS#11 module `module`, logging in with `pin`. Loads and
    /// initializes the module (`Unavailable` if it cannot be loaded); the
    /// token and the key are looked up at each use.
    pub fn new(
        module: impl AsRef<Path>,
        token_label: &str,
        key_label: &str,
        pin: Pin,
    ) -> Result<Self, WrapError> {
        if key_label.is_empty() || token_label.is_empty() {
            return Err(WrapError::Failed(
                "token and key labels must not be empty".into(),
            ));
        }
        let module = module.as_ref().to_path_buf();
        let ctx = context(&module)?;
        Ok(Pkcs11Wrapper {
            ctx,
            module,
            token_label: token_label.to_string(),
            key_label: key_label.to_string(),
            pin,
        })
    }

    /// The slot holding the token labelled `token_label`. Every slot is
    /// listed, with a token or not: a token that is not there (pulled out,
    /// a network HSM down, a slot whose token is absent) is an outage,
    /// [`WrapError::Unavailable`], never the wrong key.
    fn slot(&self) -> Result<Slot, WrapError> {
        let slots = self
            .ctx
            .get_all_slots()
            .map_err(|e| token_error("listing the slots", e))?;
        for slot in slots {
            let info = match self.ctx.get_token_info(slot) {
                Ok(info) => info,
                // A slot without a token, or one that cannot be read, holds
                // no token of ours: look at the next.
                Err(CkError::Pkcs11(
                    RvError::TokenNotPresent
                    | RvError::TokenNotRecognized
                    | RvError::DeviceRemoved
                    | RvError::DeviceError
                    | RvError::SlotIdInvalid,
                    _,
                )) => continue,
                Err(e) => return Err(token_error("reading a token's label", e)),
            };
            if info.label().trim_end() == self.token_label {
                return Ok(slot);
            }
        }
        Err(WrapError::Unavailable(format!(
            "no token labelled {:?} is present in PKCS#11 module {}",
            self.token_label,
            self.module.display()
        )))
    }

    fn session(&self, read_write: bool) -> Result<LoggedIn, WrapError> {
        let slot = self.slot()?;
        let session = if read_write {
            self.ctx.open_rw_session(slot)
        } else {
            self.ctx.open_ro_session(slot)
        }
        .map_err(|e| token_error("opening a token session", e))?;
        match session.login(UserType::User, Some(&self.pin.0)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(token_error("logging in to the token", e)),
        }
        Ok(LoggedIn(session))
    }

    /// The AES secret keys labelled `key_label` in the token.
    fn find(&self, session: &Session) -> Result<Vec<ObjectHandle>, WrapError> {
        session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Label(self.key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| token_error("looking up the wrapping key", e))
    }

    /// The one key labelled `key_label` (`WrongKey` if there is none,
    /// `Failed` if the label is ambiguous).
    fn key(&self, session: &Session) -> Result<ObjectHandle, WrapError> {
        match self.find(session)?.as_slice() {
            [one] => Ok(*one),
            [] => Err(WrapError::WrongKey(format!(
                "no AES key labelled {:?} in token {:?}",
                self.key_label, self.token_label
            ))),
            _ => Err(WrapError::Failed(format!(
                "more than one AES key labelled {:?} in token {:?}",
                self.key_label, self.token_label
            ))),
        }
    }

    /// Creates the wrapping key in the token: AES-256, generated inside it,
    /// a token object, private, sensitive, never extractable, usable to
    /// encrypt and decrypt only, labelled `key_label` with a random
    /// `CKA_ID`. Refused if a key with that label exists.
    pub fn generate_key(&self) -> Result<(), WrapError> {
        let session = self.session(true)?;
        if !self.find(&session.0)?.is_empty() {
            return Err(WrapError::Failed(format!(
                "token {:?} already holds an AES key labelled {:?}",
                self.token_label, self.key_label
            )));
        }
        let mut id = [0u8; KEY_ID_LEN];
        sealkv_crypto_envelope::random::fill(&mut id)
            .map_err(|e| WrapError::Failed(e.to_string()))?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen((KEY_LEN as u64).into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Sign(false),
            Attribute::Verify(false),
            Attribute::Derive(false),
            Attribute::Label(self.key_label.as_bytes().to_vec()),
            Attribute::Id(id.to_vec()),
        ];
        session
            .0
            .generate_key(&Mechanism::AesKeyGen, &template)
            .map_err(|e| token_error("generating the wrapping key", e))?;
        tracing::info!(
            token = %self.token_label,
            key = %self.key_label,
            "PKCS#11 wrapping key generated in the token"
        );
        Ok(())
    }

    /// Whether the token refuses to reveal the wrapping key's value
    /// (`C_GetAttributeValue(CKA_VALUE)` answers "sensitive" or
    /// "unavailable"), and the key is marked never extractable.
    pub fn key_is_sealed_in_token(&self) -> Result<bool, WrapError> {
        let session = self.session(false)?;
        let key = self.key(&session.0)?;
        let info = session
            .0
            .get_attribute_info(key, &[AttributeType::Value])
            .map_err(|e| token_error("reading the key's attributes", e))?;
        let hidden = matches!(
            info.as_slice(),
            [cryptoki::object::AttributeInfo::Sensitive
                | cryptoki::object::AttributeInfo::Unavailable]
        );
        let flags = session
            .0
            .get_attributes(
                key,
                &[AttributeType::Extractable, AttributeType::NeverExtractable],
            )
            .map_err(|e| token_error("reading the key's attributes", e))?;
        let never_extractable = flags.contains(&Attribute::Extractable(false))
            && flags.contains(&Attribute::NeverExtractable(true));
        Ok(hidden && never_extractable)
    }

    fn gcm_op(
        &self,
        session: &Session,
        key: ObjectHandle,
        iv: &mut [u8; IV_LEN],
        input: &[u8],
        aad: &[u8],
        encrypt: bool,
    ) -> Result<Zeroizing<Vec<u8>>, CkError> {
        let params = GcmParams::new(&mut iv[..], aad, (TAG_LEN as u64 * 8).into())?;
        let mechanism = Mechanism::AesGcm(params);
        let out = if encrypt {
            session.encrypt(&mechanism, key, input)
        } else {
            session.decrypt(&mechanism, key, input)
        };
        // Moved, not copied, into zeroizing storage.
        out.map(Zeroizing::new)
    }

    /// Whether the token still encrypts and decrypts under `key` and
    /// `aad`: a round trip of a public probe value. Some tokens (SoftHSM2)
    /// answer a GCM tag that does not verify with `CKR_GENERAL_ERROR`
    /// rather than `CKR_ENCRYPTED_DATA_INVALID`; a token that passes this
    /// probe right after is answering, so its refusal means the wrapped key
    /// does not authenticate, not an outage.
    fn round_trips(&self, session: &Session, key: ObjectHandle, aad: &[u8]) -> bool {
        const PROBE: [u8; KEY_LEN] = [0x5a; KEY_LEN];
        let mut iv = [0u8; IV_LEN];
        if sealkv_crypto_envelope::random::fill(&mut iv).is_err() {
            return false;
        }
        let mut iv_decrypt = iv;
        self.gcm_op(session, key, &mut iv, &PROBE, aad, true)
            .and_then(|sealed| self.gcm_op(session, key, &mut iv_decrypt, &sealed, aad, false))
            .is_ok_and(|plain| plain.as_slice() == PROBE)
    }
}

impl KeyWrapper for Pkcs11Wrapper {
    fn kind(&self) -> &str {
        WRAPPER_KIND
    }

    /// `label=<key label>;id=<CKA_ID in hex>`: the id drawn by
    /// [`Pkcs11Wrapper::generate_key`] tells apart two keys that share a
    /// label (a key deleted and made again).
    fn key_id(&self) -> Result<String, WrapError> {
        let session = self.session(false)?;
        let key = self.key(&session.0)?;
        let attrs = session
            .0
            .get_attributes(key, &[AttributeType::Id])
            .map_err(|e| token_error("reading the key's CKA_ID", e))?;
        let id = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::Id(id) => Some(hex::encode(id)),
                _ => None,
            })
            .unwrap_or_default();
        let key_id = format!("label={};id={id}", self.key_label);
        if key_id.len() > sealkv_crypto_envelope::MAX_WRAPPING_KEY_ID_LEN {
            return Err(WrapError::Failed("the key label is too long".into()));
        }
        Ok(key_id)
    }

    fn wrap(&self, key: &SecretKey, context: &[u8]) -> Result<Vec<u8>, WrapError> {
        let session = self.session(false)?;
        let handle = self.key(&session.0)?;
        let mut iv = [0u8; IV_LEN];
        sealkv_crypto_envelope::random::fill(&mut iv)
            .map_err(|e| WrapError::Failed(e.to_string()))?;
        let mut iv_used = iv;
        let sealed = self
            .gcm_op(
                &session.0,
                handle,
                &mut iv_used,
                key.expose(),
                context,
                true,
            )
            .map_err(|e| token_error("wrapping a key in the token", e))?;
        if sealed.len() != KEY_LEN + TAG_LEN || iv_used != iv {
            return Err(WrapError::Failed(format!(
                "the token returned {} bytes for a wrapped key, or changed the IV",
                sealed.len()
            )));
        }
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretKey, WrapError> {
        if wrapped.len() != WRAPPED_LEN {
            return Err(WrapError::WrongKey(format!(
                "a PKCS#11 wrapped key has {WRAPPED_LEN} bytes, not {}",
                wrapped.len()
            )));
        }
        let (iv, sealed) = wrapped.split_at(IV_LEN);
        let mut iv: [u8; IV_LEN] = iv
            .try_into()
            .map_err(|_| WrapError::Failed("IV length".into()))?;
        let session = self.session(false)?;
        let handle = self.key(&session.0)?;
        let plain = match self.gcm_op(&session.0, handle, &mut iv, sealed, context, false) {
            Ok(plain) => plain,
            Err(CkError::Pkcs11(RvError::GeneralError, _))
                if self.round_trips(&session.0, handle, context) =>
            {
                return Err(WrapError::WrongKey(
                    "unwrapping a key in the token: the wrapped key does not open under this \
                     key and context"
                        .into(),
                ));
            }
            Err(e) => return Err(token_error("unwrapping a key in the token", e)),
        };
        SecretKey::from_bytes(&plain)
            .map_err(|_| WrapError::Failed("the token unwrapped a key of the wrong length".into()))
    }

    fn describe(&self) -> String {
        format!(
            "PKCS#11 key {:?} in token {:?} ({})",
            self.key_label,
            self.token_label,
            self.module.display()
        )
    }
}
