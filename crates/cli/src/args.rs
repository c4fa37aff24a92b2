//! The command line, as clap parses it. Names and flags are a contract.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// sealkv: an embedded key-value store with encryption at rest.
#[derive(Debug, Parser)]
#[command(
    name = "sealkv",
    version,
    about,
    propagate_version = true,
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The formats and exit codes, at the end of `sealkv --help`.
const AFTER_HELP: &str = "\
Records: `scan` and `get` print KEY<TAB>VALUE with the escapes \\t \\n \\r \\\\ and
\\xHH (for every byte that is not printable UTF-8; a key's leading `{` too), so
any bytes survive `scan > f` then `load f`. --hex: keys and values as hex,
in arguments and output. --json: one JSON object per line, \"key\"/\"value\"
as strings when UTF-8, \"key_base64\"/\"value_base64\" when not (with --hex,
\"key_hex\"/\"value_hex\"); `load` reads every form back.

Output: every write to standard output and standard error is checked; a
lost write (full disk, closed pipe) is exit 5. Warnings of the engine go to
standard error (-q: errors only; -v, -vv, -vvv: more).

Exit codes: 0 success, 1 `get` of an absent key or `keyspaces --drop` of an
absent keyspace, 2 usage, 3 key problem (missing, wrong, unreadable key),
4 corruption or a failed check, 5 anything else (I/O, lock held, destination exists, bad input, lost output),
6 key wrapper unreachable (PKCS#11 module not loading, token absent or not answering).

Examples:
  sealkv keygen prod.key
  sealkv --db ./data --key-file prod.key init
  sealkv --db ./data --key-file prod.key scan --prefix user: > users.tsv
  sealkv --db ./copy --key-file prod.key load users.tsv
  sealkv --db ./data --key-file prod.key --json stats";

/// Options accepted before or after the command name.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The database directory.
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) db: Option<PathBuf>,
    /// Read the master key from a file: 32 raw bytes, or 64 hex digits
    /// (warns if group or others can read it).
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
    /// The PKCS#11 module (the HSM vendor's shared library, or SoftHSM2's)
    /// holding the master key: with --pkcs11-token and --pkcs11-key, the
    /// key never leaves the token.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) pkcs11_module: Option<PathBuf>,
    /// The label of the PKCS#11 token holding the master key.
    #[arg(long, global = true, value_name = "LABEL")]
    pub(crate) pkcs11_token: Option<String>,
    /// The label of the AES key in the token that wraps this database's
    /// keys (made by `keygen --pkcs11`).
    #[arg(long, global = true, value_name = "LABEL")]
    pub(crate) pkcs11_key: Option<String>,
    /// The environment variable holding the token's user PIN (default
    /// SEALKV_PKCS11_PIN); if it is not set, the PIN is asked for (no
    /// echo). Never give the PIN itself as an argument.
    #[arg(long, global = true, value_name = "VAR")]
    pub(crate) pkcs11_pin_env: Option<String>,
    /// Algorithm for a new database (init, import): aes-256-gcm (default),
    /// or any other the crypto provider holds, a registered plugin's too.
    #[arg(long, global = true, value_name = "ALGORITHM", ignore_case = true, value_parser = crate::open::algorithm_parser())]
    pub(crate) algorithm: Option<String>,
    /// Create or import without encryption at rest.
    #[arg(long, global = true)]
    pub(crate) plaintext: bool,
    /// A freshness anchor file outside the database directory: updated
    /// after every commit, checked at every open (a directory older than
    /// it, such as an old copy put back, exits 4). Its directory must exist.
    /// `init` and `import` anchor the new database; `restore` points the
    /// anchor at the restored database.
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) anchor_file: Option<PathBuf>,
    /// Keys and values as hex: in arguments (put, get, delete, scan
    /// bounds), in output, and in `load`'s text lines.
    #[arg(long, global = true)]
    pub(crate) hex: bool,
    /// Work in the named keyspace instead of the default one (get, put,
    /// delete, scan, load; `put` and `load` create it if it is missing);
    /// `export` only that keyspace.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) keyspace: Option<String>,
    /// Machine-readable output: one JSON object per record or report.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Show more of the engine's log on standard error (-v info, -vv
    /// debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// Only errors on standard error (no warnings, no progress bars).
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Write a new random 256-bit key (hex, mode 0600); refuses to overwrite.
    #[command(
        after_help = "Examples:\n  sealkv keygen ~/.config/sealkv/prod.key\n  SEALKV_PKCS11_PIN=... sealkv --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --pkcs11-token prod --pkcs11-key db-master keygen --pkcs11"
    )]
    Keygen {
        /// Where to write the key (not with --pkcs11).
        #[arg(required_unless_present = "pkcs11", conflicts_with = "pkcs11")]
        path: Option<PathBuf>,
        /// Create the key inside the PKCS#11 token named by --pkcs11-module,
        /// --pkcs11-token and --pkcs11-key instead: AES-256, never
        /// extractable, usable only to wrap and unwrap this database's keys.
        #[arg(long)]
        pkcs11: bool,
    },
    /// Create a database (encrypted when a key is given).
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key init")]
    Init {
        /// Page size in bytes (a power of two, 4096 to 65536).
        #[arg(long)]
        page_size: Option<u32>,
    },
    /// Store VALUE under KEY ("-" reads the value from standard input,
    /// byte for byte).
    #[command(
        after_help = "Examples:\n  sealkv --db ./data --key-file prod.key put user:1 Ada\n  sealkv --db ./data --key-file prod.key put photo:1 - < photo.jpg\n  sealkv --db ./data --key-file prod.key --hex put 00ff 0a0b"
    )]
    Put {
        /// The key (its bytes as given; hex with --hex).
        key: OsString,
        /// The value, or "-" for standard input.
        value: OsString,
    },
    /// Print the value stored under KEY, escaped, and a newline (exit 1 if
    /// absent).
    #[command(
        after_help = "Examples:\n  sealkv --db ./data --key-file prod.key get user:1\n  sealkv --db ./data --key-file prod.key get --raw photo:1 > photo.jpg"
    )]
    Get {
        /// The key (hex with --hex).
        key: OsString,
        /// Write the value's bytes exactly, with no escapes and no newline.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
    },
    /// Delete KEY, or every key starting with P (--prefix P: in atomic
    /// batches of at most 1,024 keys; prints how many were deleted).
    #[command(
        after_help = "Examples:\n  sealkv --db ./data --key-file prod.key delete user:1\n  sealkv --db ./data --key-file prod.key delete --prefix session:\n  sealkv --db ./data --key-file prod.key compact"
    )]
    Delete {
        /// The key (hex with --hex).
        #[arg(required_unless_present = "prefix", conflicts_with = "prefix")]
        key: Option<OsString>,
        /// Delete every key starting with P instead (hex with --hex).
        #[arg(long, value_name = "P")]
        prefix: Option<OsString>,
    },
    /// Print records in key order, one KEY<TAB>VALUE line each, escaped
    /// (see `sealkv --help`), or JSON lines with --json.
    #[command(
        after_help = "Examples:\n  sealkv --db ./data --key-file prod.key scan --prefix user: --limit 10\n  sealkv --db ./data --key-file prod.key --json scan > dump.jsonl"
    )]
    Scan {
        /// Only keys starting with P.
        #[arg(long, value_name = "P")]
        prefix: Option<OsString>,
        /// First key (inclusive).
        #[arg(long, value_name = "A")]
        start: Option<OsString>,
        /// Last key (exclusive).
        #[arg(long, value_name = "B")]
        end: Option<OsString>,
        /// At most N records.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
    },
    /// Load records from FILE: KEY<TAB>VALUE lines (escaped, as `scan`
    /// prints them; hex with --hex) or JSON lines, mixed freely.
    ///
    /// The whole file is checked first: a malformed line (no TAB, a second
    /// raw TAB, a raw carriage return, a bad escape, an empty or blank
    /// line, a key or value over the limits) is reported as FILE:LINE and
    /// nothing is written. Then records are written in batches of at most
    /// --batch-size bytes, each all or nothing; if a write fails, the
    /// report says how many records were committed, up to which line, and
    /// whether the failed batch may or may not be applied.
    #[command(
        after_help = "Examples:\n  sealkv --db ./data --key-file prod.key load users.tsv\n  sealkv --db ./data --key-file prod.key load --atomic dump.jsonl"
    )]
    Load {
        /// The file to load.
        file: PathBuf,
        /// Bytes of keys and values per batch (default 4 MiB; at most the
        /// engine's batch limit of 128 MiB).
        #[arg(long, value_name = "BYTES", conflicts_with = "atomic")]
        batch_size: Option<usize>,
        /// One batch for the whole file: all of it or nothing (the file
        /// must fit the engine's batch limit of 128 MiB).
        #[arg(long)]
        atomic: bool,
    },
    /// List the named keyspaces, one per line, or drop one with all its
    /// keys (--drop NAME; exit 1 if there is none of that name).
    #[command(
        after_help = "Examples:\n  sealkv --db ./data --key-file prod.key keyspaces\n  sealkv --db ./data --key-file prod.key --keyspace users put 1 Ada\n  sealkv --db ./data --key-file prod.key keyspaces --drop users"
    )]
    Keyspaces {
        /// Drop this keyspace and every key in it.
        #[arg(long, value_name = "NAME")]
        drop: Option<String>,
    },
    /// Flush the memtable into the page file.
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key flush")]
    Flush,
    /// Give the page file's free pages back to the file system: move live
    /// pages from the end of the file into free slots and cut it (online;
    /// prints the file's size before and after, --json as JSON).
    #[command(after_help = "Example:\n  sealkv --db ./data --key-file prod.key --json compact")]
    Compact,
    /// Counts, sizes, cache, WAL and encryption status (never a key); the
    /// page file's size, live and free pages and average leaf fill.
    /// --json gives numbers as JSON numbers.
    #[command(after_help = "Example:
  sealkv --db ./data --key-file prod.key --json stats")]
    Stats,
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
        after_help = "Examples:\n  sealkv --db ./data --key-file old.key rekey --new-key-file new.key\n  sealkv --db ./data --key-file old.key --pkcs11-module M --pkcs11-token T rekey --new-pkcs11-key db-master"
    )]
    Rekey {
        /// The new key file.
        #[arg(
            long,
            value_name = "PATH",
            required_unless_present = "new_pkcs11_key",
            conflicts_with = "new_pkcs11_key"
        )]
        new_key_file: Option<PathBuf>,
        /// The label of the new wrapping key, in the token named by
        /// --pkcs11-module and --pkcs11-token (a PIN as for --pkcs11-key).
        #[arg(long, value_name = "LABEL")]
        new_pkcs11_key: Option<String>,
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
        after_help = "Example:\n  sealkv bench --n 100000 --json   # one JSON object per workload\n  sealkv bench --n 1000000 --value-size 100 --peers   # build with --features peers"
    )]
    Bench {
        /// Records per workload at 100-byte values (a tenth of it at 4 KiB).
        #[arg(long, visible_alias = "records", value_name = "N")]
        n: Option<u64>,
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
        /// Also run redb, SQLite, LMDB and fjall on the comparison workloads
        /// (fills, reads after reopen, scan, overwrite, durable single puts,
        /// YCSB A-F, transactions, collections against SQLite), and print
        /// encrypted sealkv over the best of them (needs a build with
        /// `--features peers`).
        #[arg(long)]
        peers: bool,
        /// sealkv's page cache in MiB (default: the configuration's, 256),
        /// e.g. to compare at a peer's cache size.
        #[arg(long, value_name = "MIB")]
        cache_mib: Option<u64>,
        /// Only these workloads: `key-value` (fills, reads, scan,
        /// overwrite, syncwrite, YCSB, transactions, mix) or `collections`
        /// (the coll-* workloads); default all.
        #[arg(long, value_enum, default_value_t = BenchSuite::All)]
        suite: BenchSuite,
    },
    /// The guided tour: an encrypted database, a scan for plaintext, a
    /// backup, a key rotation.
    #[command(after_help = "Example:\n  sealkv demo")]
    Demo,
}

/// The workloads `sealkv bench --suite` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchSuite {
    /// Every workload.
    All,
    /// The key-value workloads.
    KeyValue,
    /// The typed-collection workloads.
    Collections,
}
