//! A buffered positional reader over one segment file, so recovery reads a
//! large segment in big chunks without holding all of it in memory.

#![deny(clippy::indexing_slicing)]

use std::path::PathBuf;
use std::sync::Arc;

use sealkv_fileio::{FileError, FileOp, VfsFile};

use crate::error::Result;

const CHUNK: usize = 1 << 20;

/// (No `Debug`: the buffer holds segment bytes.)
pub(crate) struct SegmentReader {
    file: Arc<dyn VfsFile>,
    path: PathBuf,
    len: u64,
    buf: Vec<u8>,
    buf_off: u64,
    /// Bytes read from the file plus bytes charged by the caller: what a
    /// damage scan has cost so far.
    work: u64,
}

impl SegmentReader {
    pub(crate) fn new(file: Arc<dyn VfsFile>, path: PathBuf, len: u64) -> Self {
        SegmentReader {
            file,
            path,
            len,
            buf: Vec::new(),
            buf_off: 0,
            work: 0,
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Bytes read from the file so far, plus whatever [`charge`](Self::charge)
    /// added.
    pub(crate) fn work(&self) -> u64 {
        self.work
    }

    /// Counts `n` bytes of work done on bytes already read (verifying them).
    pub(crate) fn charge(&mut self, n: u64) {
        self.work = self.work.saturating_add(n);
    }

    /// The `n` bytes at `off`, or `None` if they run past the end of the
    /// file (as it was when opened).
    pub(crate) fn get(&mut self, off: u64, n: usize) -> Result<Option<&[u8]>> {
        let Some(end) = off.checked_add(n as u64) else {
            return Ok(None);
        };
        if end > self.len {
            return Ok(None);
        }
        let buf_end = self.buf_off + self.buf.len() as u64;
        if off < self.buf_off || end > buf_end {
            let want = (n.max(CHUNK) as u64).min(self.len - off) as usize;
            self.buf.resize(want, 0);
            self.file
                .read_exact_at(&mut self.buf, off)
                .map_err(|e| FileError::new(FileOp::Read, &self.path, e))?;
            self.buf_off = off;
            self.work = self.work.saturating_add(want as u64);
        }
        let start = (off - self.buf_off) as usize;
        Ok(self.buf.get(start..start + n))
    }

    /// Whether every byte from `off` to the end of the file is zero.
    pub(crate) fn zero_from(&mut self, mut off: u64) -> Result<bool> {
        while off < self.len {
            let n = ((self.len - off) as usize).min(CHUNK);
            match self.get(off, n)? {
                Some(b) if b.iter().all(|&x| x == 0) => off += n as u64,
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}
