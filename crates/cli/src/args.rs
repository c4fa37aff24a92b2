//! The command line, as clap parses it. Names and flags are a contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// sealkv: an embedded key-value store with encryption at rest.
#[derive(Debug, Parser)]
#[command(name = "sealkv", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options accepted before or after the command name.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The database directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) db: Option<PathBuf>,
    /// Read the master key from a file: 32 raw bytes, or 64 hex digits.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// Read the master key (64 hex digits) from an environment variable.
    #[arg(long, global = true, value_name = "VAR")]
    pub(crate) key_env: Option<String>,
    /// Read a passphrase from an environment variable.
    #[arg(long, global = true, value_name = "VAR")]
    pub(crate) passphrase_env: Option<String>,
    /// Prompt for a passphrase (no echo).
    #[arg(long, global = true)]
    pub(crate) passphrase: bool,
    /// Algorithm for a new database: aes-256-gcm (default), chacha20-poly1305,
    /// aes-256-gcm-siv, or a plugin's name in a build that has one.
    #[arg(long, global = true, value_name = "A")]
    pub(crate) algorithm: Option<String>,
    /// Create or import without encryption at rest.
    #[arg(long, global = true)]
    pub(crate) plaintext: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a new random 256-bit key (hex, mode 0600); refuses to overwrite.
    #[command(after_help = "Example:\n  sealkv keygen ~/.config/sealkv/prod.key")]
    Keygen {
        /// Where to write the key.
        path: PathBuf,
    },
    /// Create a database (encrypted when a key is given).
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key init")]
    Init {
        /// Page size in bytes (a power of two, 4096 to 65536).
        #[arg(long)]
        page_size: Option<u32>,
    },
    /// Store VALUE under KEY ("-" reads the value from standard input).
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key put user:1 Ada")]
    Put {
        /// The key.
        key: String,
        /// The value, or "-" for standard input.
        value: String,
    },
    /// Print the value stored under KEY (exit 1 if absent).
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key get user:1")]
    Get {
        /// The key.
        key: String,
    },
    /// Delete KEY.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key delete user:1")]
    Delete {
        /// The key.
        key: String,
    },
    /// Print records, one `key<TAB>value` line each (or JSON lines).
    #[command(
        after_help = "Example:\n  sealkv --db ./data --key-file prod.key scan --prefix user: --limit 10"
    )]
    Scan {
        /// Only keys starting with P.
        #[arg(long, value_name = "P")]
        prefix: Option<String>,
        /// First key (inclusive).
        #[arg(long, value_name = "A")]
        start: Option<String>,
        /// Last key (exclusive).
        #[arg(long, value_name = "B")]
        end: Option<String>,
        /// At most N records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// JSON lines instead of tab-separated.
        #[arg(long)]
        json: bool,
    },
    /// Load `key<TAB>value` lines or JSON lines from FILE.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key load records.tsv")]
    Load {
        /// The file to load.
        file: PathBuf,
    },
    /// Flush the memtable into the page file.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key flush")]
    Flush,
    /// Counts, sizes, cache, WAL and encryption status (never a key); the
    /// page file's size, live and free pages and average leaf fill.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key stats --json")]
    Stats {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Check every file of the database, read-only (exit 4 on any finding).
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key verify")]
    Verify,
    /// Take a hot physical backup into DEST.
    #[command(
        after_help = "Example:\n  sealkv --db ./data --key-file prod.key backup /backups/data-2026-11-28"
    )]
    Backup {
        /// Destination directory (must not exist).
        dest: PathBuf,
    },
    /// Restore BACKUP into DEST.
    #[command(
        after_help = "Example:\n  sealkv --key-file prod.key restore /backups/data-2026-11-28 ./restored"
    )]
    Restore {
        /// The backup directory.
        backup: PathBuf,
        /// Destination directory (must not exist).
        dest: PathBuf,
    },
    /// Export every record into a sealed archive.
    #[command(
        after_help = "Example:\n  sealkv --db ./data --key-file prod.key export data.skva --archive-key-file backup.key"
    )]
    Export {
        /// The archive to write.
        file: PathBuf,
        /// Seal the archive under this key instead of the database's.
        #[arg(long, value_name = "K", conflicts_with = "plaintext_export")]
        archive_key_file: Option<PathBuf>,
        /// Write an UNENCRYPTED archive (checksummed only).
        #[arg(long)]
        plaintext_export: bool,
    },
    /// Build a new database from an archive.
    #[command(
        after_help = "Example:\n  sealkv --db ./new --key-file new.key --algorithm chacha20-poly1305 import data.skva --archive-key-file backup.key"
    )]
    Import {
        /// The archive to read.
        file: PathBuf,
        /// The archive's key, if not the database key options.
        #[arg(long, value_name = "K")]
        archive_key_file: Option<PathBuf>,
        /// The archive is a plaintext export (not sealed): read it without
        /// a key. Without this flag a plaintext archive is refused whenever
        /// a key is given, since anyone can write one.
        #[arg(long, conflicts_with = "archive_key_file")]
        plaintext_archive: bool,
    },
    /// Check an archive end to end without importing it.
    #[command(
        after_help = "Example:\n  sealkv verify-archive data.skva --archive-key-file backup.key"
    )]
    VerifyArchive {
        /// The archive.
        file: PathBuf,
        /// The archive's key, if not the key options.
        #[arg(long, value_name = "K")]
        archive_key_file: Option<PathBuf>,
        /// The archive is a plaintext export: check it without a key.
        #[arg(long, conflicts_with = "archive_key_file")]
        plaintext_archive: bool,
    },
    /// Re-wrap the data keys under a new master key.
    #[command(
        after_help = "Example:\n  sealkv --db ./data --key-file old.key rekey --new-key-file new.key"
    )]
    Rekey {
        /// The new key file.
        #[arg(long, value_name = "PATH")]
        new_key_file: PathBuf,
    },
    /// Start sealing new writes under a new data key.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key rotate-key")]
    RotateKey,
    /// Rewrite everything under the newest data key.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key reencrypt")]
    Reencrypt,
    /// One-run plaintext vs encrypted benchmark on a temporary database
    /// (under --db DIR if given): every workload for every mode, interleaved,
    /// with ratios to plaintext and peak RSS.
    #[command(
        after_help = "Example:\n  sealkv bench --n 100000 --json\n  sealkv bench --n 1000000 --value-size 100 --peers   # build with --features peers"
    )]
    Bench {
        /// Records per workload at 100-byte values (a tenth of it at 4 KiB).
        #[arg(long, visible_alias = "records", value_name = "N")]
        n: Option<u64>,
        /// One JSON object per workload.
        #[arg(long)]
        json: bool,
        /// Rounds of each workload per mode (the report takes the median).
        #[arg(long, value_name = "R")]
        rounds: Option<u32>,
        /// Only this value size in bytes (default: 100, then 4096).
        #[arg(long, value_name = "BYTES")]
        value_size: Option<usize>,
        /// Only plaintext and this mode (a column name of the report, e.g.
        /// "aes-256-gcm" or "aes-256-gcm (ring)"): for profiling one mode.
        #[arg(long, value_name = "MODE")]
        only: Option<String>,
        /// Also run redb and SQLite on fillrandom, readrandom after reopen,
        /// scan and single durable puts, and print encrypted sealkv over the
        /// best of them (needs a build with `--features peers`).
        #[arg(long)]
        peers: bool,
        /// sealkv's page cache in MiB (default: the configuration's, 256),
        /// e.g. to compare at a peer's cache size.
        #[arg(long, value_name = "MIB")]
        cache_mib: Option<u64>,
    },
    /// The guided tour: an encrypted database, a scan for plaintext, a
    /// backup, a key rotation.
    #[command(after_help = "Example:\n  sealkv demo")]
    Demo,
}
