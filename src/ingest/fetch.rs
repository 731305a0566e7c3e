//! HTTP access to the GDELT source: listings read as streams, zips streamed to temporary files.
//!
//! Every file is fetched by name from the configured base URL. Transient failures (timeouts,
//! connection errors, HTTP 429 and 5xx) are retried with doubling waits, honouring a
//! `Retry-After` in seconds. A download is checked against the listing's size and md5 as it
//! streams; a mismatch deletes the temporary file, so a failure leaves nothing behind.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use md5::{Digest, Md5};
use reqwest::{Client, StatusCode};
use tokio::io::AsyncWriteExt;

use super::listing::{
    Feed, FileKind, ListedFile, ListingLineError, ListingReader, Selection, Selector, V1_FILESIZES,
    V1_MD5SUMS,
};
use crate::config::{IngestConfig, SourceConfig};

/// Errors fetching from the source. The message is what the catalog records as the reason.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url} failed: {message}")]
    Transport { url: String, message: String },
    #[error("download of {name} exceeds the {limit}-byte limit (ingest.max_download_mb)")]
    TooLarge { name: String, limit: u64 },
    #[error("size mismatch for {name}: listing says {expected} bytes, the server sent more (download stopped)")]
    Longer { name: String, expected: u64 },
    #[error("size mismatch for {name}: listing says {expected} bytes, downloaded {actual}")]
    Size {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error("md5 mismatch for {name}: listing says {expected}, downloaded {actual}")]
    Md5 {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("writing the download of {name}: {source}")]
    Io {
        name: String,
        source: std::io::Error,
    },
}

impl FetchError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Transport { .. } => true,
            _ => false,
        }
    }
}

/// A verified download, deleted when dropped.
pub struct Download {
    pub file: tempfile::NamedTempFile,
    pub bytes: u64,
}

/// The configured GDELT source.
#[derive(Clone)]
pub struct Source {
    client: Client,
    base_url: String,
    v1_base_url: String,
    attempts: u32,
    backoff: Duration,
    max_bytes: u64,
}

impl Source {
    /// A client for `source.base_url` with an identifying User-Agent and the configured timeout.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS setup).
    pub fn new(source: &SourceConfig, ingest: &IngestConfig) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .user_agent(concat!(
                "gdelt-lake/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/gdelt-lake/gdelt-lake)"
            ))
            .connect_timeout(Duration::from_secs(source.timeout_secs.min(30)))
            // A limit on silence, not on the whole transfer: a large catch-up zip on a slow
            // link is fine as long as bytes keep arriving.
            .read_timeout(Duration::from_secs(source.timeout_secs))
            .build()?;
        Ok(Self {
            client,
            base_url: source.base_url.clone(),
            v1_base_url: source.v1_url(),
            attempts: source.retry_attempts,
            backoff: Duration::from_millis(source.retry_backoff_ms),
            max_bytes: ingest.max_download_mb * 1024 * 1024,
        })
    }

    fn url(&self, feed: Feed, name: &str) -> String {
        match feed {
            Feed::English | Feed::Translingual => format!("{}{name}", self.base_url),
            Feed::V1 => format!("{}{name}", self.v1_base_url),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or attempts run out.
    async fn with_retries<T, F, Fut>(&self, mut op: F) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<
            Output = Result<(T, Option<Duration>), (FetchError, Option<Duration>)>,
        >,
    {
        let mut wait = self.backoff;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok((value, _)) => return Ok(value),
                Err((err, retry_after)) if err.is_transient() && attempt < self.attempts => {
                    tokio::time::sleep(retry_after.unwrap_or(wait).min(Duration::from_secs(300)))
                        .await;
                    wait *= 2;
                    attempt += 1;
                }
                Err((err, _)) => return Err(err),
            }
        }
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, (FetchError, Option<Duration>)> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| (transport(url, &e), None))?;
        let status = response.status();
        if status != StatusCode::OK {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err((
                FetchError::Status {
                    url: url.to_owned(),
                    status: status.as_u16(),
                },
                retry_after,
            ));
        }
        Ok(response)
    }

    /// Reads a feed's listing by name as a stream, offering `selector` the files of `kinds`.
    /// GDELT 1.0's index is two files, `md5sums` and `filesizes`, joined by file name.
    ///
    /// # Errors
    /// The listing cannot be fetched.
    pub async fn read_listing<S, F>(
        &self,
        feed: Feed,
        listing: &str,
        kinds: &[FileKind],
        selector: F,
    ) -> Result<Selection, FetchError>
    where
        S: Selector,
        F: Fn() -> S,
    {
        if feed == Feed::V1 && listing == V1_MD5SUMS {
            return self.read_v1_index(kinds, selector).await;
        }
        let url = self.url(feed, listing);
        self.with_retries(|| async {
            let mut reader = ListingReader::new(kinds, selector());
            self.for_each_line(&url, |line| reader.push_line(line))
                .await?;
            Ok((reader.finish(), None))
        })
        .await
    }

    /// GDELT 1.0's `filesizes` (`<bytes> <name>`, a few thousand lines, held in memory) and
    /// `md5sums` (`<md5>  <name>`, streamed) as listing lines with canonical URLs.
    async fn read_v1_index<S, F>(
        &self,
        kinds: &[FileKind],
        selector: F,
    ) -> Result<Selection, FetchError>
    where
        S: Selector,
        F: Fn() -> S,
    {
        let sizes_url = self.url(Feed::V1, V1_FILESIZES);
        let sizes = self
            .with_retries(|| async {
                let mut sizes = std::collections::HashMap::new();
                self.for_each_line(&sizes_url, |line| {
                    if let Some((size, name)) = line.trim().split_once(char::is_whitespace) {
                        sizes.insert(name.trim().to_owned(), size.to_owned());
                    }
                })
                .await?;
                Ok((sizes, None))
            })
            .await?;
        let md5_url = self.url(Feed::V1, V1_MD5SUMS);
        let folder = Feed::V1.canonical_folder();
        self.with_retries(|| async {
            let mut reader = ListingReader::new(kinds, selector());
            self.for_each_line(&md5_url, |line| {
                let Some((md5, name)) = line.trim().split_once(char::is_whitespace) else {
                    // A blank line is skipped; anything else is reported by the parser.
                    reader.push_line(line);
                    return;
                };
                let name = name.trim();
                match sizes.get(name) {
                    Some(size) => reader.push_line(&format!("{size} {md5} {folder}{name}")),
                    None => reader.push_bad(line, &ListingLineError::NoSize(name.to_owned())),
                }
            })
            .await?;
            Ok((reader.finish(), None))
        })
        .await
    }

    /// Fetches `url` and hands each line of its body to `each`, as the body streams in.
    async fn for_each_line(
        &self,
        url: &str,
        mut each: impl FnMut(&str),
    ) -> Result<(), (FetchError, Option<Duration>)> {
        let response = self.get(url).await?;
        let mut body = response.bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| (transport(url, &e), None))?;
            pending.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
                each(&String::from_utf8_lossy(&pending[start..start + pos]));
                start += pos + 1;
            }
            pending.drain(..start);
        }
        each(&String::from_utf8_lossy(&pending));
        Ok(())
    }

    /// Streams a listed file into a temporary file under `dir`, checking the size cap as it
    /// goes and the listing's size and md5 at the end.
    ///
    /// # Errors
    /// HTTP or transport failure after retries, a file over the cap, a size or md5 mismatch,
    /// or a disk error. No file is left behind in any of these cases.
    pub async fn download(&self, file: &ListedFile, dir: &Path) -> Result<Download, FetchError> {
        let url = self.url(file.feed, &file.name);
        let io = |source| FetchError::Io {
            name: file.name.clone(),
            source,
        };
        if file.size > self.max_bytes {
            return Err(FetchError::TooLarge {
                name: file.name.clone(),
                limit: self.max_bytes,
            });
        }
        self.with_retries(|| async {
            let response = self.get(&url).await?;
            let temp = tempfile::Builder::new()
                .prefix("download-")
                .suffix(".zip")
                .tempfile_in(dir)
                .map_err(|e| (io(e), None))?;
            let mut out = tokio::fs::File::from_std(temp.reopen().map_err(|e| (io(e), None))?);
            let mut hasher = Md5::new();
            let mut bytes = 0u64;
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| (transport(&url, &e), None))?;
                bytes += chunk.len() as u64;
                // The listed size is at most the cap (checked above): stop as soon as the
                // body runs past it rather than download whatever the server sends.
                if bytes > file.size {
                    return Err((
                        FetchError::Longer {
                            name: file.name.clone(),
                            expected: file.size,
                        },
                        None,
                    ));
                }
                hasher.update(&chunk);
                out.write_all(&chunk).await.map_err(|e| (io(e), None))?;
            }
            out.flush().await.map_err(|e| (io(e), None))?;
            if bytes != file.size {
                return Err((
                    FetchError::Size {
                        name: file.name.clone(),
                        expected: file.size,
                        actual: bytes,
                    },
                    None,
                ));
            }
            let actual = format!("{:x}", hasher.finalize());
            if actual != file.md5 {
                return Err((
                    FetchError::Md5 {
                        name: file.name.clone(),
                        expected: file.md5.clone(),
                        actual,
                    },
                    None,
                ));
            }
            Ok((Download { file: temp, bytes }, None))
        })
        .await
    }
}

/// A `Retry-After` value: delay-seconds, or an HTTP date (its distance from now, zero if past).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
    )
}

fn transport(url: &str, e: &reqwest::Error) -> FetchError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut message = what.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    FetchError::Transport {
        url: url.to_owned(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = parse_retry_after(&soon).unwrap();
        assert!((85..=90).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }
}
