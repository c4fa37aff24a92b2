//! Snapshot data as openraft moves it: a sealed export archive in a file,
//! and the checks a received one passes before it is kept.

use std::future::Future;
use std::io::{BufReader, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use sealkv::crypto::{CryptoProvider, KeySource};
use sealkv_backup::archive::{ArchiveReader, Entry};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

use crate::error::StoreError;
use crate::state_machine::{CLUSTER, SM_KEYSPACE};

/// The archive format's magic (`FORMAT.md`, archive header bytes 0..8).
const ARCHIVE_MAGIC: &[u8; 8] = b"SEALKVAR";
/// The header byte that says whether an archive is sealed (1) or
/// plaintext (0).
const PROTECTION_BYTE: usize = 10;

/// One snapshot's archive file, open for openraft to read (to send it) or
/// write (as it arrives). The bytes are a sealkv export archive: sealed
/// under the cluster's snapshot key with a salt of its own, so the file is
/// ciphertext on disk and on the wire.
///
/// A snapshot being received is checked as it arrives: its first bytes
/// must be the header of an archive protected as this node's snapshots are
/// (a plaintext archive never reaches a sealed node's disk), and when
/// openraft ends the transfer (`shutdown`) the whole archive is read and
/// authenticated. A transfer that fails a check fails with an I/O error of
/// kind `InvalidData`, which openraft reports to the sender (who sends it
/// again later) instead of stopping this node; its file is removed, as is
/// the file of a transfer openraft abandons.
#[derive(Debug)]
pub struct SnapshotFile {
    path: PathBuf,
    file: tokio::fs::File,
    incoming: Option<Incoming>,
}

/// The state of a snapshot being received.
struct Incoming {
    /// The key the archive must open under (`None`: a plaintext node).
    key: Option<KeySource>,
    /// The cluster id the archive must record.
    cluster: Vec<u8>,
    /// Where the next write lands.
    position: u64,
    /// Whether the archive header's first bytes were checked.
    header_checked: bool,
    /// The whole-archive check, once `shutdown` started it.
    check: Option<JoinHandle<Result<(), StoreError>>>,
    /// The whole archive passed the check.
    verified: bool,
    /// The file is the node's now (renamed into place): not removed on drop.
    kept: bool,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("sealed", &self.key.is_some())
            .field("position", &self.position)
            .field("verified", &self.verified)
            .finish_non_exhaustive()
    }
}

fn refused(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

impl SnapshotFile {
    pub(crate) fn new(path: PathBuf, file: tokio::fs::File) -> Self {
        SnapshotFile {
            path,
            file,
            incoming: None,
        }
    }

    /// A new file a snapshot of cluster `cluster` sealed under `key`
    /// (plaintext for `None`) is received into.
    pub(crate) fn incoming(
        path: PathBuf,
        file: tokio::fs::File,
        key: Option<KeySource>,
        cluster: Vec<u8>,
    ) -> Self {
        SnapshotFile {
            path,
            file,
            incoming: Some(Incoming {
                key,
                cluster,
                position: 0,
                header_checked: false,
                check: None,
                verified: false,
                kept: false,
            }),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn file_mut(&mut self) -> &mut tokio::fs::File {
        &mut self.file
    }

    /// Whether the file is a received archive that passed the
    /// whole-archive check.
    pub(crate) fn verified(&self) -> bool {
        self.incoming.as_ref().is_some_and(|i| i.verified)
    }

    /// Keeps the file when this handle is dropped (it is renamed into
    /// place).
    pub(crate) fn keep(&mut self) {
        if let Some(incoming) = &mut self.incoming {
            incoming.kept = true;
        }
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        // A transfer that did not end in an install (abandoned, refused)
        // leaves nothing behind.
        if self.incoming.as_ref().is_some_and(|i| !i.kept) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Checks that `head` (an archive's first bytes) is the start of an archive
/// protected as a node with `sealed` snapshots needs.
fn check_head(head: &[u8], sealed: bool) -> std::io::Result<()> {
    if head.len() <= PROTECTION_BYTE {
        return Err(refused(
            "the snapshot's first chunk is shorter than an archive header",
        ));
    }
    if head.get(..ARCHIVE_MAGIC.len()) != Some(ARCHIVE_MAGIC.as_slice()) {
        return Err(refused("the snapshot is not a sealkv archive"));
    }
    match (head[PROTECTION_BYTE], sealed) {
        (1, true) | (0, false) => Ok(()),
        (0, true) => Err(refused(
            "the snapshot is a plaintext archive; this node's snapshots are sealed",
        )),
        _ => Err(refused(
            "the snapshot is a sealed archive; this node has no snapshot key",
        )),
    }
}

/// Reads the whole archive at `path`, authenticating every chunk under
/// `key` (a plaintext archive for `None`), and checks that it records the
/// cluster id `cluster`: what a received snapshot passes before openraft is
/// told it arrived, and the current one before it is sent. Returns the
/// archive's salt.
pub(crate) fn check_archive(
    path: &Path,
    key: Option<&KeySource>,
    cluster: &[u8],
) -> Result<[u8; 32], StoreError> {
    let mut reader = open_archive(path, key)?;
    let mut recorded = None;
    while let Some(entry) = reader.next_entry()? {
        if let Entry::Record(k, v) = entry
            && reader.keyspace() == Some(SM_KEYSPACE)
            && k == CLUSTER
        {
            recorded = Some(v);
        }
    }
    if recorded.as_deref() != Some(cluster) {
        return Err(StoreError::OtherCluster { what: "snapshot" });
    }
    Ok(reader.header().salt)
}

fn open_archive(
    path: &Path,
    key: Option<&KeySource>,
) -> Result<ArchiveReader<BufReader<std::fs::File>>, StoreError> {
    let file = std::fs::File::open(path).map_err(StoreError::io(path))?;
    Ok(ArchiveReader::open(
        BufReader::with_capacity(1 << 20, file),
        path,
        key,
        &CryptoProvider::default(),
    )?)
}

/// The salt in the header of the archive at `path` (whose key check it
/// passes under `key`).
pub(crate) fn archive_salt(path: &Path, key: Option<&KeySource>) -> Result<[u8; 32], StoreError> {
    Ok(open_archive(path, key)?.header().salt)
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(incoming) = &mut this.incoming {
            // Every write of the first bytes is checked, before anything
            // of it reaches the disk.
            if incoming.position == 0 {
                check_head(buf, incoming.key.is_some())?;
                incoming.header_checked = true;
            } else if !incoming.header_checked {
                return Poll::Ready(Err(refused(
                    "the snapshot's first chunk did not come first",
                )));
            }
            incoming.verified = false;
            let n = ready!(Pin::new(&mut this.file).poll_write(cx, buf))?;
            incoming.position += n as u64;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let Some(incoming) = &mut this.incoming else {
            return Pin::new(&mut this.file).poll_shutdown(cx);
        };
        if !incoming.verified {
            if incoming.check.is_none() {
                ready!(Pin::new(&mut this.file).poll_flush(cx))?;
                let path = this.path.clone();
                let key = incoming.key.clone();
                let cluster = incoming.cluster.clone();
                incoming.check = Some(tokio::task::spawn_blocking(move || {
                    check_archive(&path, key.as_ref(), &cluster).map(|_salt| ())
                }));
            }
            let Some(check) = incoming.check.as_mut() else {
                return Poll::Ready(Err(refused("the snapshot check did not start")));
            };
            let result = ready!(Pin::new(check).poll(cx));
            incoming.check = None;
            match result {
                Ok(Ok(())) => incoming.verified = true,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "received snapshot refused");
                    return Poll::Ready(Err(refused(format!("snapshot refused: {e}"))));
                }
                Err(e) => return Poll::Ready(Err(std::io::Error::other(e))),
            }
        }
        Pin::new(&mut this.file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> std::io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<u64>> {
        let this = self.get_mut();
        let position = ready!(Pin::new(&mut this.file).poll_complete(cx))?;
        if let Some(incoming) = &mut this.incoming {
            incoming.position = position;
        }
        Poll::Ready(Ok(position))
    }
}
