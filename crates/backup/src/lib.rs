//! sealkv backups: hot physical backups, sealed logical export and import,
//! and archive verification.
//!
//! **Status: not built yet** (issue 6). This crate is a skeleton; it will
//! drive the engine's `Db::backup_to` and stream sealed archives.
