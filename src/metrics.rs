//! Prometheus metrics, all in one place under the `gdelt_lake_` prefix.
//!
//! Each application instance owns its registry (tests run several side by side). Labels are
//! bounded: route templates, never raw paths or URLs; tables and outcomes from fixed sets.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The application's metrics.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ingest_files: IntCounterVec,
    pub ingest_rows: IntCounterVec,
    pub ingest_bytes: IntCounterVec,
    pub ingest_quarantined: IntCounterVec,
    pub ingest_duplicates: IntCounterVec,
    pub ingest_failures: IntCounterVec,
    pub last_batch: GaugeVec,
    pub batch_age: GaugeVec,
    pub jobs_running: IntGauge,
    pub files_waiting: IntGauge,
    pub queries_running: IntGauge,
    pub query_cache: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("gdelt_lake".into()), None).expect("a valid metric prefix");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route template and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency, by route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let ingest_files = IntCounterVec::new(
            Opts::new(
                "ingest_files_total",
                "Files processed by ingestion, by table and outcome",
            ),
            &["table", "outcome"],
        )
        .expect("valid metric");
        let ingest_rows = IntCounterVec::new(
            Opts::new("ingest_rows_total", "Rows stored in the lake, by table"),
            &["table"],
        )
        .expect("valid metric");
        let ingest_bytes = IntCounterVec::new(
            Opts::new(
                "ingest_downloaded_bytes_total",
                "Zip bytes downloaded and verified, by table",
            ),
            &["table"],
        )
        .expect("valid metric");
        let ingest_quarantined = IntCounterVec::new(
            Opts::new(
                "ingest_quarantined_rows_total",
                "Lines set aside in quarantine, by table",
            ),
            &["table"],
        )
        .expect("valid metric");
        let ingest_duplicates = IntCounterVec::new(
            Opts::new(
                "ingest_duplicate_rows_total",
                "Rows not stored because their event id is stored already in their feed, by table",
            ),
            &["table"],
        )
        .expect("valid metric");
        let ingest_failures = IntCounterVec::new(
            Opts::new(
                "ingest_failures_total",
                "Failed file ingestions, by table and stage",
            ),
            &["table", "stage"],
        )
        .expect("valid metric");
        let last_batch = GaugeVec::new(
            Opts::new(
                "ingest_last_success_batch_timestamp_seconds",
                "Batch time (Unix seconds) of the newest batch stored, by table",
            ),
            &["table"],
        )
        .expect("valid metric");
        let batch_age = GaugeVec::new(
            Opts::new(
                "ingest_newest_batch_age_seconds",
                "Age of the newest stored batch at scrape time, by table",
            ),
            &["table"],
        )
        .expect("valid metric");
        let jobs_running =
            IntGauge::new("ingest_jobs_running", "Ingestion jobs planned or running")
                .expect("valid metric");
        let files_waiting = IntGauge::new(
            "ingest_files_waiting",
            "Files waiting for an ingestion worker",
        )
        .expect("valid metric");
        let query_cache = IntCounterVec::new(
            Opts::new(
                "query_cache_total",
                "Analytics answers served from the cache (hit) or computed (miss)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let queries_running = IntGauge::new(
            "queries_running",
            "Lake queries running or waiting for a connection",
        )
        .expect("valid metric");
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(ingest_files.clone()),
            Box::new(ingest_rows.clone()),
            Box::new(ingest_bytes.clone()),
            Box::new(ingest_quarantined.clone()),
            Box::new(ingest_duplicates.clone()),
            Box::new(ingest_failures.clone()),
            Box::new(last_batch.clone()),
            Box::new(batch_age.clone()),
            Box::new(jobs_running.clone()),
            Box::new(files_waiting.clone()),
            Box::new(queries_running.clone()),
            Box::new(query_cache.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        Self {
            registry,
            http_requests,
            http_duration,
            ingest_files,
            ingest_rows,
            ingest_bytes,
            ingest_quarantined,
            ingest_duplicates,
            ingest_failures,
            last_batch,
            batch_age,
            jobs_running,
            files_waiting,
            queries_running,
            query_cache,
        }
    }

    /// Records a newer stored batch for `table`; older batches never move the gauge back.
    pub fn observe_batch(&self, table: &str, batch_unix_seconds: f64) {
        let gauge = self.last_batch.with_label_values(&[table]);
        if batch_unix_seconds > gauge.get() {
            gauge.set(batch_unix_seconds);
        }
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> String {
        let now = chrono::Utc::now().timestamp() as f64;
        for table in ["events", "mentions", "gkg"] {
            if let Ok(gauge) = self.last_batch.get_metric_with_label_values(&[table]) {
                if gauge.get() > 0.0 {
                    self.batch_age
                        .with_label_values(&[table])
                        .set(now - gauge.get());
                }
            }
        }
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
