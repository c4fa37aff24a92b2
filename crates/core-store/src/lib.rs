//! sealkv's page file: a copy-on-write B+tree of sealed pages, two alternating
//! meta pages, free-page management and a bounded cache of decrypted pages.
//!
//! **Status: not built yet** (issue 4). This crate is an empty skeleton that
//! fixes its place in the workspace: it depends on `sealkv-fileio` for all
//! file access and on `sealkv-crypto-envelope` for sealing, and knows nothing
//! of the write-ahead log.
