use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sealkv_core_store::{ReadTxn, Store, StoreOptions};
use sealkv_crypto_envelope::{
    CryptoProvider, DataKey, DbId, EncryptionAlgorithm, KeyId, Keyring, SecretKey,
};
use sealkv_fileio::{SimVfs, Vfs};

pub(crate) fn path() -> PathBuf {
    PathBuf::from("/db/data.sealkv")
}

pub(crate) fn keyring_with(db: DbId, secret: [u8; 32]) -> Arc<Keyring> {
    let k = Keyring::new(db, Arc::new(CryptoProvider::default()));
    k.insert(DataKey::new(
        KeyId(1),
        EncryptionAlgorithm::Aes256Gcm.id(),
        SecretKey::from_bytes(&secret).unwrap(),
    ));
    k.set_active(KeyId(1)).unwrap();
    Arc::new(k)
}

pub(crate) fn keyring() -> Arc<Keyring> {
    keyring_with(DbId([7; 16]), [42; 32])
}

pub(crate) fn opts(keyring: Option<Arc<Keyring>>) -> StoreOptions {
    StoreOptions {
        keyring,
        cache_bytes: 1 << 20,
        ..StoreOptions::default()
    }
}

pub(crate) fn create(vfs: &SimVfs, keyring: Option<Arc<Keyring>>) -> Store {
    let v: Arc<dyn Vfs> = Arc::new(vfs.clone());
    v.create_dir_all(Path::new("/db")).unwrap();
    Store::create(v, &path(), opts(keyring)).unwrap().0
}

pub(crate) fn open(vfs: &SimVfs, keyring: Option<Arc<Keyring>>) -> Store {
    let v: Arc<dyn Vfs> = Arc::new(vfs.clone());
    Store::open(v, &path(), opts(keyring)).unwrap().0
}

pub(crate) fn all(r: &ReadTxn) -> Vec<(Vec<u8>, Vec<u8>)> {
    r.range(Bound::Unbounded, Bound::Unbounded)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

pub(crate) fn key(i: u32) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

pub(crate) fn val(i: u32, g: u32) -> Vec<u8> {
    format!("value-{i}-{g}-").repeat(3).into_bytes()
}

/// Flips one bit at `offset` of the file at `p`.
pub(crate) fn flip(vfs: &SimVfs, p: &Path, offset: usize) {
    let mut b = vfs.read_file(p).unwrap();
    b[offset] ^= 0x04;
    vfs.write_file(p, &b);
}
