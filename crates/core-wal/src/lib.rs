//! sealkv's write-ahead log: numbered segments of sealed records, group
//! commit, sync modes and recovery.
//!
//! **Status: not built yet** (issue 3). This crate is an empty skeleton that
//! fixes its place in the workspace: it depends on `sealkv-fileio` for all
//! file access and on `sealkv-crypto-envelope` for sealing, and knows nothing
//! of pages or trees.
