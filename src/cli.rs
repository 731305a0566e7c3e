//! The command line: global configuration flags and the subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, ConfigLoader};

/// Keeps a local Parquet lake of the GDELT feed up to date and serves analytics over HTTP.
#[derive(Debug, Parser)]
#[command(name = "gdelt-lake", version, about)]
pub struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults apply.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Override any key, e.g. --set ingest.workers=4 (repeatable; beats file and environment).
    #[arg(long = "set", global = true, value_name = "SECTION.KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Shorthand for --set server.listen=ADDR.
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Shorthand for --set lake.data_dir=DIR.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Shorthand for --set source.base_url=URL.
    #[arg(long, global = true, value_name = "URL")]
    pub base_url: Option<String>,
    /// Shorthand for --set log.format=json|text.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Shorthand for --set log.level=LEVEL.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Serve the HTTP API with the scheduler and ingestion pool (the default).
    Serve,
    /// Ingest once without serving; prints one line per batch and exits non-zero if any failed.
    Ingest {
        /// How many of the newest batches (15-minute timestamps) to ingest, every file of the configured tables in them.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
        latest: u32,
    },
    /// Ingest every file of a range of batch dates, with progress. Resumable: run it again
    /// after an interruption and it continues; nothing is stored twice.
    Backfill {
        /// First batch date (UTC), YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        from: chrono::NaiveDate,
        /// Last batch date (UTC), YYYY-MM-DD, inclusive.
        #[arg(long, value_name = "YYYY-MM-DD")]
        to: chrono::NaiveDate,
        /// Tables to fill (default: ingest.tables), e.g. --tables events,mentions,gkg.
        #[arg(long, value_delimiter = ',', value_name = "TABLES")]
        tables: Vec<String>,
        /// Feeds to fill (default: ingest.feeds), e.g. --feeds english,translingual.
        #[arg(long, value_delimiter = ',', value_name = "FEEDS")]
        feeds: Vec<String>,
    },
    /// Print per-day completeness: expected, ingested, failed, pending, missing upstream.
    Coverage {
        /// First day (default: 6 days before --until).
        #[arg(long, value_name = "YYYY-MM-DD")]
        since: Option<chrono::NaiveDate>,
        /// Last day (default: today, UTC).
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: Option<chrono::NaiveDate>,
        /// events, mentions or gkg.
        #[arg(long, default_value = "events")]
        table: String,
        /// english, translingual or v1.
        #[arg(long, default_value = "english")]
        feed: String,
    },
    /// Maintain the lake now: drop partitions older than lake.retention_days (when set), then
    /// merge each complete day's batch files into one Parquet file per day, table and feed.
    /// One process owns a data directory: on a running server use POST /api/v1/lake/compact.
    Compact {
        /// First batch date to compact (default: the oldest).
        #[arg(long, value_name = "YYYY-MM-DD")]
        since: Option<chrono::NaiveDate>,
        /// Last batch date to compact (default: yesterday, UTC; today is never compacted).
        #[arg(long, value_name = "YYYY-MM-DD")]
        until: Option<chrono::NaiveDate>,
    },
    /// Print the effective configuration as TOML and exit.
    Config,
    /// Write a synthetic GDELT 2.0 mirror (zips, md5s, listings) for benchmarks and volume
    /// tests; the same seed gives the same files. Serve it with any static HTTP server.
    Synth {
        /// Days of batches to write.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3660))]
        days: u32,
        /// Directory to write `gdeltv2/` into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First day, YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD", default_value = "2024-01-01")]
        start: chrono::NaiveDate,
        /// Batches per day (GDELT has 96; fewer make a small mirror).
        #[arg(long, default_value_t = 96, value_parser = clap::value_parser!(u32).range(1..=96))]
        batches_per_day: u32,
    },
}

impl Cli {
    /// The effective configuration: defaults < --config file < environment < flags.
    ///
    /// # Errors
    /// Any layer is unreadable, names an unknown key or has an invalid value.
    pub fn load_config<I>(&self, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut loader = ConfigLoader::new();
        if let Some(path) = &self.config {
            loader = loader.file(path)?;
        }
        loader = loader.env(env)?;
        let shorthands = [
            ("server.listen", &self.listen),
            ("lake.data_dir", &self.data_dir),
            ("source.base_url", &self.base_url),
            ("log.format", &self.log_format),
            ("log.level", &self.log_level),
        ];
        for (key, value) in shorthands {
            if let Some(value) = value {
                loader = loader.set(&format!("{key}={value}"))?;
            }
        }
        for assignment in &self.overrides {
            loader = loader.set(assignment)?;
        }
        loader.build()
    }
}
