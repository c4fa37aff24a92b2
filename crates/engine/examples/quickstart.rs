//! A tour of sealkv: open an encrypted database, write, read, iterate,
//! snapshot, and see that the files hold no plaintext.
//!
//! Run it with `cargo run -p sealkv --example quickstart`.

#![allow(clippy::print_stdout)]

use sealkv::crypto::MasterKey;
use sealkv::{Config, Db, WriteBatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // In production the key comes from a key file, the environment, a
    // passphrase or a KMS (`KeySource`); never from source code.
    let key = MasterKey::from_bytes(&[7u8; 32])?;
    let config = Config::new(dir.path()).encryption_key(key.clone());
    let db = Db::open_with_config(config)?;

    db.put(b"greeting", b"hello, sealed world")?;
    let mut batch = WriteBatch::new();
    for i in 0..1000u32 {
        batch.put(format!("user/{i:04}"), format!("secret-{i}"));
    }
    db.write(&batch)?;

    let snapshot = db.snapshot()?;
    db.delete(b"greeting")?;
    assert_eq!(
        snapshot.get(b"greeting")?.as_deref(),
        Some(&b"hello, sealed world"[..])
    );
    assert_eq!(db.get(b"greeting")?, None);

    let last_three: Vec<_> = db
        .prefix(b"user/")?
        .rev()
        .take(3)
        .collect::<Result<_, _>>()?;
    for (k, v) in &last_three {
        println!(
            "{} = {}",
            String::from_utf8_lossy(k),
            String::from_utf8_lossy(v)
        );
    }
    drop(snapshot);
    db.flush()?;
    let stats = db.stats()?;
    println!(
        "encrypted: {}, records flushed through seq {}",
        stats.encryption.encrypt_at_rest, stats.applied_seq
    );
    db.close()?;

    // The files on disk hold none of it.
    for entry in walk(dir.path())? {
        let bytes = std::fs::read(&entry)?;
        assert!(!bytes.windows(7).any(|w| w == b"secret-"));
    }
    println!("no plaintext in {}", dir.path().display());

    // Reopen with the key.
    let db = Db::open_with_config(Config::new(dir.path()).encryption_key(key))?;
    assert_eq!(db.get(b"user/0042")?.as_deref(), Some(&b"secret-42"[..]));
    db.close()?;
    Ok(())
}

fn walk(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else {
            out.push(path);
        }
    }
    Ok(out)
}
