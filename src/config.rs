//! Configuration: one typed struct built from layers.
//!
//! Precedence, lowest first: the defaults embedded from the repository's `config.toml` < the file
//! given with `--config` < environment variables < command-line overrides. Every layer is merged
//! as TOML before a single typed deserialisation, so unknown keys are rejected wherever they come
//! from, and `validate` refuses impossible values with the key name and what is accepted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::ingest::listing::{parse_feeds, parse_tables, Feed, FileKind};

/// The documented defaults, embedded so the binary runs without any file.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config.toml");

/// Prefix of the environment variables that override keys: `GDELT_LAKE_<SECTION>_<KEY>`.
const ENV_PREFIX: &str = "GDELT_LAKE_";

/// The cron schedule (with seconds, UTC) that runs every `minutes`, when cron can say it
/// exactly: the minutes divide an hour or a day.
fn interval_schedule(minutes: u32) -> Option<String> {
    match minutes {
        1..=59 if 60 % minutes == 0 => Some(format!("0 */{minutes} * * * *")),
        60 => Some("0 0 * * * *".into()),
        1440 => Some("0 0 0 * * *".into()),
        m if m > 0 && m % 60 == 0 && 1440 % m == 0 => Some(format!("0 0 */{} * * *", m / 60)),
        _ => None,
    }
}

/// Errors building the configuration. Each names the offending key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: String, message: String },
    #[error("unknown configuration key `{key}` (from {origin}); known keys: {known}")]
    UnknownKey {
        key: String,
        origin: String,
        known: String,
    },
    #[error("invalid value for `{key}` (from {origin}): {message}")]
    BadOverride {
        key: String,
        origin: String,
        message: String,
    },
    #[error("invalid configuration: {0}")]
    Shape(String),
    #[error("invalid value for `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("invalid value for `{key}`: {value} is negative; accepted: a whole number from 0")]
    Negative { key: String, value: i64 },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub lake: LakeConfig,
    pub source: SourceConfig,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub http_workers: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LakeConfig {
    pub data_dir: PathBuf,
    /// Days of partitions kept (by batch date); older ones are dropped. 0 keeps everything.
    pub retention_days: u32,
    /// Run lake maintenance (retention, then compaction of complete days) on `maintenance_schedule`.
    pub maintenance_enabled: bool,
    pub maintenance_schedule: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub base_url: String,
    pub v1_base_url: String,
    pub timeout_secs: u64,
    pub retry_attempts: u32,
    pub retry_backoff_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub schedule: String,
    pub tables: Vec<String>,
    pub feeds: Vec<String>,
    pub scheduler_enabled: bool,
    pub batches_per_run: usize,
    pub workers: usize,
    pub queue_capacity: usize,
    pub max_attempts: u32,
    pub stale_after_minutes: u64,
    pub max_download_mb: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    pub max_concurrent: usize,
    pub threads: usize,
    pub queue_timeout_ms: u64,
    pub timeout_ms: u64,
    pub max_scan_files: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Text,
}

/// Accepted values of `log.level`.
pub const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warning", "error", "critical"];

/// A base URL: http(s), ending in '/'.
fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || !url.ends_with('/') {
        return Err(ConfigError::Invalid {
            key,
            message: format!(
                "{url:?} is not accepted; expected an http:// or https:// URL ending in '/'"
            ),
        });
    }
    reqwest::Url::parse(url).map_err(|e| ConfigError::Invalid {
        key,
        message: format!("{url:?} is not a URL: {e}"),
    })?;
    Ok(())
}

/// A cron expression with seconds, as tokio-cron-scheduler takes it.
fn check_cron(key: &'static str, expression: &str, example: &str) -> Result<(), ConfigError> {
    tokio_cron_scheduler::Job::new_async(expression, |_, _| Box::pin(async {}))
        .map(drop)
        .map_err(|_| ConfigError::Invalid {
            key,
            message: format!(
                "{expression:?} is not a cron expression; expected six fields \
                 'sec min hour day-of-month month day-of-week', e.g. \"{example}\""
            ),
        })
}

impl SourceConfig {
    /// Where GDELT 1.0 files are fetched from: `source.v1_base_url`, or when empty the `events/`
    /// folder beside `source.base_url`'s folder, as on GDELT's server.
    pub fn v1_url(&self) -> String {
        if !self.v1_base_url.is_empty() {
            return self.v1_base_url.clone();
        }
        match reqwest::Url::parse(&self.base_url).and_then(|base| base.join("../events/")) {
            Ok(url) => url.to_string(),
            Err(_) => format!("{}../events/", self.base_url),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let table: Table = DEFAULT_CONFIG_TOML
            .parse()
            .expect("the embedded config.toml is valid TOML");
        Value::Table(table)
            .try_into()
            .expect("the embedded config.toml matches Config")
    }
}

/// Builds the effective configuration from its layers.
pub struct ConfigLoader {
    merged: Table,
}

impl ConfigLoader {
    /// Starts from the embedded defaults.
    pub fn new() -> Self {
        Self {
            merged: DEFAULT_CONFIG_TOML
                .parse()
                .expect("the embedded config.toml is valid TOML"),
        }
    }

    /// Merges a TOML file over what is there. Keys must exist in the defaults.
    ///
    /// # Errors
    /// The file cannot be read, is not TOML, or names an unknown key.
    pub fn file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.display().to_string(),
                message: e.message().to_owned(),
            })?;
        let origin = path.display().to_string();
        for (section, value) in table {
            match value {
                Value::Table(keys) => {
                    for (key, value) in keys {
                        self.set_value(&format!("{section}.{key}"), value, &origin)?;
                    }
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: section,
                        origin,
                        known: self.known_keys(),
                    })
                }
            }
        }
        Ok(self)
    }

    /// Applies `GDELT_LAKE_<SECTION>_<KEY>` variables and the original prototype's aliases
    /// (`DATA_LAKE_PATH`, `INGEST_INTERVAL_MINUTES`, `INGEST_N_BATCHES`) from `vars`.
    ///
    /// # Errors
    /// A `GDELT_LAKE_` variable names no key, or a value has the wrong type.
    pub fn env<I>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut vars: Vec<(String, String)> = vars.into_iter().collect();
        // Aliases first, so an explicit GDELT_LAKE_ variable wins over an alias; an alias whose
        // key is also set explicitly is not even read (a bad value in it does not matter).
        vars.sort_by_key(|(name, _)| name.starts_with(ENV_PREFIX));
        let explicit = |target: &str| {
            let wanted = format!("{ENV_PREFIX}{}", target.replace('.', "_")).to_ascii_uppercase();
            vars.iter().any(|(n, _)| n.to_ascii_uppercase() == wanted)
        };
        let shadowed: Vec<&str> = [
            ("DATA_LAKE_PATH", "lake.data_dir"),
            ("INGEST_N_BATCHES", "ingest.batches_per_run"),
            ("INGEST_INTERVAL_MINUTES", "ingest.schedule"),
        ]
        .into_iter()
        .filter(|(_, target)| explicit(target))
        .map(|(alias, _)| alias)
        .collect();
        vars.retain(|(name, _)| !shadowed.contains(&name.as_str()));
        for (name, value) in vars {
            let origin = format!("environment variable {name}");
            match name.as_str() {
                "DATA_LAKE_PATH" => self.set_str("lake.data_dir", &value, &origin)?,
                "INGEST_N_BATCHES" => self.set_str("ingest.batches_per_run", &value, &origin)?,
                "INGEST_INTERVAL_MINUTES" => {
                    let schedule = value
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .and_then(interval_schedule)
                        .ok_or_else(|| ConfigError::BadOverride {
                            key: "ingest.schedule".into(),
                            origin: origin.clone(),
                            message: format!(
                                "expected minutes that divide an hour (1..=60) or a day \
                                 (120, 180, 240, 360, 480, 720, 1440), got {value:?}; \
                                 use ingest.schedule for anything else"
                            ),
                        })?;
                    self.set_str("ingest.schedule", &schedule, &origin)?;
                }
                _ => {
                    if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
                        let key =
                            self.key_for_env(rest)
                                .ok_or_else(|| ConfigError::UnknownKey {
                                    key: name.clone(),
                                    origin: origin.clone(),
                                    known: self.known_keys(),
                                })?;
                        self.set_str(&key, &value, &origin)?;
                    }
                }
            }
        }
        Ok(self)
    }

    /// Applies a `section.key=value` override given on the command line.
    ///
    /// # Errors
    /// The text has no `=`, names an unknown key, or has a value of the wrong type.
    pub fn set(mut self, assignment: &str) -> Result<Self, ConfigError> {
        let origin = format!("command line `{assignment}`");
        let (key, value) = assignment
            .split_once('=')
            .ok_or_else(|| ConfigError::BadOverride {
                key: assignment.into(),
                origin: origin.clone(),
                message: "expected section.key=value".into(),
            })?;
        self.set_str(key.trim(), value, &origin)?;
        Ok(self)
    }

    /// Deserialises and validates the merged layers.
    ///
    /// # Errors
    /// A value of the wrong type, or one that `Config::validate` refuses.
    pub fn build(self) -> Result<Config, ConfigError> {
        // Enumerations are checked here, where the key is known, rather than by serde.
        if let Some(format) = self.merged.get("log").and_then(|l| l.get("format")) {
            if !matches!(format.as_str(), Some("json" | "text")) {
                return Err(ConfigError::Invalid {
                    key: "log.format",
                    message: format!("{format} is not accepted; expected \"json\" or \"text\""),
                });
            }
        }
        // Every number of the configuration is a count, a size or a duration: name the key of
        // a negative one rather than let serde say "expected u64".
        for (section, keys) in &self.merged {
            for (key, value) in keys.as_table().into_iter().flatten() {
                if let Some(value) = value.as_integer().filter(|v| *v < 0) {
                    return Err(ConfigError::Negative {
                        key: format!("{section}.{key}"),
                        value,
                    });
                }
            }
        }
        let config: Config = Value::Table(self.merged)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Shape(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    fn key_for_env(&self, rest: &str) -> Option<String> {
        let lower = rest.to_ascii_lowercase();
        self.merged.iter().find_map(|(section, keys)| {
            let key = lower.strip_prefix(&format!("{section}_"))?;
            keys.as_table()?
                .contains_key(key)
                .then(|| format!("{section}.{key}"))
        })
    }

    fn known_keys(&self) -> String {
        let mut keys = Vec::new();
        for (section, table) in &self.merged {
            if let Some(table) = table.as_table() {
                keys.extend(table.keys().map(|k| format!("{section}.{k}")));
            }
        }
        keys.join(", ")
    }

    /// Sets a key from text, typed by the default's type: strings stay text, anything else is
    /// parsed as a TOML value (so `4`, `true` work).
    fn set_str(&mut self, key: &str, text: &str, origin: &str) -> Result<(), ConfigError> {
        let current = self.lookup(key, origin)?;
        let value = if current.is_str() {
            Value::String(text.to_owned())
        } else if current.is_array() && !text.trim_start().starts_with('[') {
            // Lists of names may be given as `a,b,c`.
            Value::Array(
                text.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_owned()))
                    .collect(),
            )
        } else {
            let wrapped = format!("v = {}", text.trim());
            wrapped
                .parse::<Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .ok_or_else(|| ConfigError::BadOverride {
                    key: key.into(),
                    origin: origin.into(),
                    message: format!("expected {}, got {text:?}", article(current.type_str())),
                })?
        };
        self.set_value(key, value, origin)
    }

    fn set_value(&mut self, key: &str, value: Value, origin: &str) -> Result<(), ConfigError> {
        let current = self.lookup(key, origin)?;
        if current.type_str() != value.type_str() {
            return Err(ConfigError::BadOverride {
                key: key.into(),
                origin: origin.into(),
                message: format!(
                    "expected {}, got {}",
                    article(current.type_str()),
                    article(value.type_str())
                ),
            });
        }
        let (section, name) = key.split_once('.').expect("lookup checked the key shape");
        self.merged[section]
            .as_table_mut()
            .expect("sections are tables")
            .insert(name.to_owned(), value);
        Ok(())
    }

    fn lookup(&self, key: &str, origin: &str) -> Result<&Value, ConfigError> {
        key.split_once('.')
            .and_then(|(section, name)| self.merged.get(section)?.as_table()?.get(name))
            .ok_or_else(|| ConfigError::UnknownKey {
                key: key.into(),
                origin: origin.into(),
                known: self.known_keys(),
            })
    }
}

/// "a string", "an integer".
fn article(type_name: &str) -> String {
    let an = type_name.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {type_name}", if an { "an" } else { "a" })
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self::new()
    }
}

impl Config {
    /// Refuses impossible values, naming the key and what is accepted.
    ///
    /// # Errors
    /// `ConfigError::Invalid` for the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn range<T: PartialOrd + std::fmt::Display + Copy>(
            key: &'static str,
            value: T,
            low: T,
            high: T,
        ) -> Result<(), ConfigError> {
            if value < low || value > high {
                return Err(ConfigError::Invalid {
                    key,
                    message: format!("{value} is out of range; accepted: {low}..={high}"),
                });
            }
            Ok(())
        }
        self.listen_addr()?;
        range("server.http_workers", self.server.http_workers, 0, 256)?;
        if self.lake.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "lake.data_dir",
                message: "must not be empty".into(),
            });
        }
        check_url("source.base_url", &self.source.base_url)?;
        if !self.source.v1_base_url.is_empty() {
            check_url("source.v1_base_url", &self.source.v1_base_url)?;
        }
        range("source.timeout_secs", self.source.timeout_secs, 1, 86_400)?;
        range("source.retry_attempts", self.source.retry_attempts, 1, 10)?;
        range(
            "source.retry_backoff_ms",
            self.source.retry_backoff_ms,
            0,
            600_000,
        )?;
        check_cron("ingest.schedule", &self.ingest.schedule, "0 */15 * * * *")?;
        check_cron(
            "lake.maintenance_schedule",
            &self.lake.maintenance_schedule,
            "0 30 0 * * *",
        )?;
        range(
            "lake.retention_days",
            self.lake.retention_days,
            0,
            1_000_000,
        )?;
        self.ingest_kinds()?;
        self.ingest_feeds()?;
        range(
            "ingest.batches_per_run",
            self.ingest.batches_per_run,
            1,
            10_000,
        )?;
        range("ingest.workers", self.ingest.workers, 1, 64)?;
        range("ingest.max_attempts", self.ingest.max_attempts, 1, 100)?;
        range(
            "ingest.stale_after_minutes",
            self.ingest.stale_after_minutes,
            1,
            1_000_000,
        )?;
        range(
            "ingest.queue_capacity",
            self.ingest.queue_capacity,
            1,
            10_000,
        )?;
        range(
            "ingest.max_download_mb",
            self.ingest.max_download_mb,
            1,
            102_400,
        )?;
        range("query.max_concurrent", self.query.max_concurrent, 1, 64)?;
        range("query.threads", self.query.threads, 1, 64)?;
        range(
            "query.queue_timeout_ms",
            self.query.queue_timeout_ms,
            0,
            600_000,
        )?;
        range("query.timeout_ms", self.query.timeout_ms, 100, 3_600_000)?;
        range(
            "query.max_scan_files",
            self.query.max_scan_files,
            1,
            10_000_000,
        )?;
        if !LOG_LEVELS.contains(&self.log.level.as_str()) {
            return Err(ConfigError::Invalid {
                key: "log.level",
                message: format!(
                    "{:?} is not accepted; expected one of {}",
                    self.log.level,
                    LOG_LEVELS.join(", ")
                ),
            });
        }
        Ok(())
    }

    /// The file kinds of `ingest.tables`, in a fixed order.
    ///
    /// # Errors
    /// `ConfigError::Invalid` for an unknown name or an empty list.
    pub fn ingest_kinds(&self) -> Result<Vec<FileKind>, ConfigError> {
        let names: Vec<&str> = self.ingest.tables.iter().map(String::as_str).collect();
        parse_tables(&names).map_err(|message| ConfigError::Invalid {
            key: "ingest.tables",
            message,
        })
    }

    /// The feeds of `ingest.feeds`, in a fixed order.
    ///
    /// # Errors
    /// `ConfigError::Invalid` for an unknown name or an empty list.
    pub fn ingest_feeds(&self) -> Result<Vec<Feed>, ConfigError> {
        let names: Vec<&str> = self.ingest.feeds.iter().map(String::as_str).collect();
        parse_feeds(&names).map_err(|message| ConfigError::Invalid {
            key: "ingest.feeds",
            message,
        })
    }

    /// The parsed `server.listen` address.
    ///
    /// # Errors
    /// `ConfigError::Invalid` when it is not `IP:PORT`.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|_| ConfigError::Invalid {
                key: "server.listen",
                message: format!(
                    "{:?} is not accepted; expected IP:PORT, e.g. 127.0.0.1:8000",
                    self.server.listen
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn embedded_defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.server.listen, "127.0.0.1:8000");
        assert_eq!(c.lake.data_dir, PathBuf::from("./data"));
        assert_eq!(c.source.base_url, "http://data.gdeltproject.org/gdeltv2/");
        assert_eq!(c.source.v1_url(), "http://data.gdeltproject.org/events/");
        let mirror = SourceConfig {
            base_url: "http://127.0.0.1:8765/m/gdeltv2/".into(),
            ..c.source.clone()
        };
        assert_eq!(mirror.v1_url(), "http://127.0.0.1:8765/m/events/");
        let own = SourceConfig {
            v1_base_url: "https://example.org/v1/".into(),
            ..mirror
        };
        assert_eq!(own.v1_url(), "https://example.org/v1/");
        assert_eq!(c.ingest.schedule, "0 */15 * * * *");
        assert!(c.ingest.scheduler_enabled);
        assert_eq!(c.log.format, LogFormat::Json);
        c.validate().unwrap();
    }

    #[test]
    fn layers_apply_in_order_and_aliases_work() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[ingest]\nworkers = 3\nbatches_per_run = 7\n[log]\nformat = \"text\"\n",
        )
        .unwrap();
        let c = ConfigLoader::new()
            .file(&file)
            .unwrap()
            .env(env(&[
                ("DATA_LAKE_PATH", "/tmp/alias"),
                ("INGEST_INTERVAL_MINUTES", "5"),
                ("GDELT_LAKE_INGEST_WORKERS", "4"),
                ("PATH", "/usr/bin"),
            ]))
            .unwrap()
            .set("ingest.workers=5")
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.ingest.workers, 5);
        assert_eq!(c.ingest.batches_per_run, 7);
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.lake.data_dir, PathBuf::from("/tmp/alias"));
        assert_eq!(c.ingest.schedule, "0 */5 * * * *");
        assert_eq!(
            c.ingest_kinds().unwrap(),
            vec![FileKind::Export, FileKind::Mentions]
        );
    }

    #[test]
    fn tables_from_a_comma_list_and_bad_names_refused() {
        let c = ConfigLoader::new()
            .env(env(&[("GDELT_LAKE_INGEST_TABLES", "gkg, events")]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            c.ingest_kinds().unwrap(),
            vec![FileKind::Export, FileKind::Gkg]
        );
        let err = ConfigLoader::new()
            .set("ingest.tables=events,gdelt")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid value for `ingest.tables`: \"gdelt\" is not a table; accepted: events, mentions, gkg"
        );
        let err = ConfigLoader::new()
            .set("ingest.tables=[]")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid value for `ingest.tables`: is empty; accepted: one or more of events, mentions, gkg"
        );
    }

    #[test]
    fn the_interval_alias_becomes_an_exact_schedule_or_is_refused() {
        assert_eq!(interval_schedule(15).as_deref(), Some("0 */15 * * * *"));
        assert_eq!(interval_schedule(60).as_deref(), Some("0 0 * * * *"));
        assert_eq!(interval_schedule(180).as_deref(), Some("0 0 */3 * * *"));
        assert_eq!(interval_schedule(1440).as_deref(), Some("0 0 0 * * *"));
        // */45 would fire at :00 and :45, not every 45 minutes.
        assert_eq!(interval_schedule(45), None);
        assert_eq!(interval_schedule(0), None);
        let err = ConfigLoader::new()
            .env([("INGEST_INTERVAL_MINUTES".to_owned(), "45".to_owned())])
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid value for `ingest.schedule` (from environment variable INGEST_INTERVAL_MINUTES): \
             expected minutes that divide an hour (1..=60) or a day (120, 180, 240, 360, 480, 720, 1440), \
             got \"45\"; use ingest.schedule for anything else"
        );
    }

    #[test]
    fn a_negative_number_names_its_key_and_a_shadowed_alias_is_not_read() {
        let err = ConfigLoader::new()
            .set("query.timeout_ms=-5")
            .unwrap()
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value for `query.timeout_ms`: -5 is negative; accepted: a whole number from 0"
        );
        let config = ConfigLoader::new()
            .env([
                ("INGEST_INTERVAL_MINUTES".to_owned(), "45".to_owned()),
                (
                    "GDELT_LAKE_INGEST_SCHEDULE".to_owned(),
                    "0 */5 * * * *".to_owned(),
                ),
            ])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(config.ingest.schedule, "0 */5 * * * *");
    }

    #[test]
    fn explicit_variable_beats_alias() {
        let c = ConfigLoader::new()
            .env(env(&[
                ("GDELT_LAKE_LAKE_DATA_DIR", "/explicit"),
                ("DATA_LAKE_PATH", "/alias"),
            ]))
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(c.lake.data_dir, PathBuf::from("/explicit"));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let err = ConfigLoader::new().set("ingest.wrokers=2").err().unwrap();
        assert!(
            err.to_string()
                .starts_with("unknown configuration key `ingest.wrokers`"),
            "{err}"
        );
        let err = ConfigLoader::new()
            .set("ingest.workers=many")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid value for `ingest.workers` (from command line `ingest.workers=many`): expected an integer, got \"many\""
        );
        let err = ConfigLoader::new()
            .set("ingest.workers=0")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid value for `ingest.workers`: 0 is out of range; accepted: 1..=64"
        );
        let err = ConfigLoader::new()
            .set("log.format=xml")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "invalid value for `log.format`: \"xml\" is not accepted; expected \"json\" or \"text\""
        );
        let err = ConfigLoader::new()
            .set("ingest.schedule=every day")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with(
                "invalid value for `ingest.schedule`: \"every day\" is not a cron expression"
            ),
            "{err}"
        );
        let err = ConfigLoader::new()
            .set("source.base_url=ftp://x/")
            .unwrap()
            .build()
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("invalid value for `source.base_url`"),
            "{err}"
        );
        let err = ConfigLoader::new()
            .env(env(&[("GDELT_LAKE_NOPE", "1")]))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("unknown configuration key `GDELT_LAKE_NOPE`"),
            "{err}"
        );
    }
}
