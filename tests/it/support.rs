//! Shared test harness: a local HTTP server standing in for GDELT, mirrors built from generated
//! or real files, and the real application on port 0 over a temporary data directory.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipEntryBuilder};
use gdelt_lake::config::{Config, ConfigLoader};
use gdelt_lake::Application;
use md5::{Digest, Md5};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The real GDELT files, or `None` with the reason printed.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("GDELT_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // Cargo sets the variable when it runs tests: the checkout being tested, even when a
            // shared target directory holds a binary built from another checkout.
            let root = std::env::var_os("CARGO_MANIFEST_DIR")
                .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
            root.join("../shared/gdelt")
        });
    if dir.join("make-mirror").is_file() {
        Some(dir)
    } else {
        println!(
            "skipped: this test needs the real GDELT files in {} (set GDELT_SHARED_DIR)",
            dir.display()
        );
        None
    }
}

/// Zips `content` as a single deflated member named `member`.
pub async fn zip_bytes(member: &str, content: &[u8]) -> Vec<u8> {
    let mut writer = ZipFileWriter::new(Vec::<u8>::new());
    writer
        .write_entry_whole(
            ZipEntryBuilder::new(member.to_owned().into(), Compression::Deflate),
            content,
        )
        .await
        .unwrap();
    writer.close().await.unwrap()
}

pub fn md5_hex(bytes: &[u8]) -> String {
    format!("{:x}", Md5::digest(bytes))
}

/// A realistic 16-field mentions row.
pub fn mention_row(event_id: i64, batch: &str, source: &str) -> String {
    format!(
        "{event_id}\t20150218220000\t{batch}\t1\t{source}\thttp://{source}/story/{event_id}\t3\t-1\t120\t160\t1\t50\t2541\t-1.25\t\t"
    )
}

/// A realistic 61-field events row, with some fields replaced by name.
pub fn event_row(id: i64, batch: &str, overrides: &[(&str, &str)]) -> String {
    let names = gdelt_lake::ingest::parse::EVENTS.columns;
    let base = format!(
        "{id}\t20150217\t201502\t2015\t2015.1288\tUSA\tUNITED STATES\tUSA\t\t\t\t\t\t\t\tGOV\tGOVERNMENT\t\t\t\t\t\tGOV\t\t\t1\t010\t010\t01\t1\t0.0\t4\t1\t4\t-1.5\t1\tUnited States\tUS\tUS\t\t39.828175\t-98.5795\tUS\t0\t\t\t\t\t\t\t\t3\tNew York, New York, United States\tUS\tUSNY\tNY061\t40.7143\t-74.006\t975772\t{batch}\thttp://example.com/news/{id}"
    );
    let mut fields: Vec<String> = base.split('\t').map(str::to_owned).collect();
    assert_eq!(fields.len(), 61);
    for (name, value) in overrides {
        let i = names
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        fields[i] = (*value).to_owned();
    }
    fields.join("\t")
}

#[derive(Clone, Copy)]
pub struct Fault {
    pub status: u16,
    pub times: usize,
    /// A `Retry-After` header value to send with the failure.
    pub retry_after: Option<&'static str>,
}

#[derive(Default)]
struct ServerState {
    root: PathBuf,
    hits: HashMap<String, usize>,
    /// When each request for a path arrived.
    hit_times: HashMap<String, Vec<std::time::Instant>>,
    faults: HashMap<String, Fault>,
    /// Delay before answering a zip, to make long runs.
    zip_delay: Duration,
}

/// A static file server for a mirror directory, counting requests and injecting faults.
pub struct MirrorServer {
    pub base_url: String,
    state: Arc<Mutex<ServerState>>,
    handle: actix_web::dev::ServerHandle,
}

impl MirrorServer {
    pub fn start(root: &Path) -> Self {
        let state = Arc::new(Mutex::new(ServerState {
            root: root.to_owned(),
            ..Default::default()
        }));
        let shared = state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            let shared = shared.clone();
            actix_web::App::new().default_service(web::to(move |req: HttpRequest| {
                let shared = shared.clone();
                async move {
                    let delay = shared.lock().unwrap().zip_delay;
                    if req.path().ends_with(".zip") && !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    serve(&shared, req.path())
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base_url: format!("http://127.0.0.1:{port}/gdeltv2/"),
            state,
            handle,
        }
    }

    /// Requests seen for a file name under gdeltv2/.
    pub fn hits(&self, name: &str) -> usize {
        let state = self.state.lock().unwrap();
        state
            .hits
            .get(&format!("/gdeltv2/{name}"))
            .copied()
            .unwrap_or(0)
    }

    /// Answers `status` for the next `times` requests of a file name under gdeltv2/.
    pub fn fail(&self, name: &str, status: u16, times: usize) {
        self.state.lock().unwrap().faults.insert(
            format!("/gdeltv2/{name}"),
            Fault {
                status,
                times,
                retry_after: None,
            },
        );
    }

    /// Answers `status` with a `Retry-After: retry_after` header for the next `times`
    /// requests of a file name under gdeltv2/.
    pub fn fail_with_retry_after(
        &self,
        name: &str,
        status: u16,
        times: usize,
        retry_after: &'static str,
    ) {
        self.state.lock().unwrap().faults.insert(
            format!("/gdeltv2/{name}"),
            Fault {
                status,
                times,
                retry_after: Some(retry_after),
            },
        );
    }

    /// When each request for a file name under gdeltv2/ arrived.
    pub fn hit_times(&self, name: &str) -> Vec<std::time::Instant> {
        let state = self.state.lock().unwrap();
        state
            .hit_times
            .get(&format!("/gdeltv2/{name}"))
            .cloned()
            .unwrap_or_default()
    }

    /// Delays every zip answer by `delay`.
    pub fn slow_down(&self, delay: Duration) {
        self.state.lock().unwrap().zip_delay = delay;
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

fn serve(state: &Mutex<ServerState>, path: &str) -> HttpResponse {
    let mut state = state.lock().unwrap();
    *state.hits.entry(path.to_owned()).or_default() += 1;
    state
        .hit_times
        .entry(path.to_owned())
        .or_default()
        .push(std::time::Instant::now());
    if let Some(fault) = state.faults.get_mut(path) {
        if fault.times > 0 {
            fault.times -= 1;
            let mut answer =
                HttpResponse::build(actix_web::http::StatusCode::from_u16(fault.status).unwrap());
            if let Some(after) = fault.retry_after {
                answer.insert_header(("Retry-After", after));
            }
            return answer.body("injected failure");
        }
    }
    if path.contains("..") {
        return HttpResponse::BadRequest().finish();
    }
    match std::fs::read(state.root.join(path.trim_start_matches('/'))) {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .body(body),
        Err(_) => HttpResponse::NotFound().body("not found"),
    }
}

/// A generated GDELT-shaped mirror on disk.
pub struct Mirror {
    pub dir: tempfile::TempDir,
    lines: Vec<(String, String)>,
    /// GDELT 1.0 files under events/: (name, md5, size).
    v1: Vec<(String, String, usize)>,
}

impl Mirror {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("gdeltv2")).unwrap();
        Self {
            dir,
            lines: Vec::new(),
            v1: Vec::new(),
        }
    }

    /// Adds a GDELT 1.0 file `name` under events/ whose single member `member` holds `lines`,
    /// and lists it in events/md5sums and events/filesizes.
    pub async fn add_v1(&mut self, name: &str, member: &str, lines: &[String]) {
        let content = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let zip = zip_bytes(member, content.as_bytes()).await;
        let dir = self.dir.path().join("events");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &zip).unwrap();
        self.v1.retain(|(n, _, _)| n != name);
        self.v1.push((name.to_owned(), md5_hex(&zip), zip.len()));
        // GDELT's own index lists its reduced master file, which gdelt-lake does not take.
        let mut md5sums =
            "f6fcb7e955e35f93c9dae427c07b545d  GDELT.MASTERREDUCEDV2.1979-2013.zip\n".to_owned();
        let mut filesizes = "1088704384 GDELT.MASTERREDUCEDV2.1979-2013.zip\n".to_owned();
        for (name, md5, size) in &self.v1 {
            md5sums.push_str(&format!("{md5}  {name}\n"));
            filesizes.push_str(&format!("{size} {name}\n"));
        }
        std::fs::write(dir.join("md5sums"), md5sums).unwrap();
        std::fs::write(dir.join("filesizes"), filesizes).unwrap();
    }

    /// Adds an events export for `batch` (YYYYMMDDHHMMSS) whose member holds `lines`.
    pub async fn add_export(&mut self, batch: &str, lines: &[String]) -> String {
        self.add_file(&format!("{batch}.export.CSV"), lines).await
    }

    /// Adds a mentions file for `batch`.
    pub async fn add_mentions(&mut self, batch: &str, lines: &[String]) -> String {
        self.add_file(&format!("{batch}.mentions.CSV"), lines).await
    }

    /// Adds `member.zip` holding `lines`.
    pub async fn add_file(&mut self, member: &str, lines: &[String]) -> String {
        let mut content = lines.join("\n");
        if !lines.is_empty() {
            content.push('\n');
        }
        let zip = zip_bytes(member, content.as_bytes()).await;
        self.add_raw(&format!("{member}.zip"), &zip, None)
    }

    /// Adds a file with arbitrary bytes; `listed_md5` overrides the md5 written in the listing.
    pub fn add_raw(&mut self, name: &str, bytes: &[u8], listed_md5: Option<&str>) -> String {
        std::fs::write(self.dir.path().join("gdeltv2").join(name), bytes).unwrap();
        let md5 = listed_md5.map_or_else(|| md5_hex(bytes), str::to_owned);
        let line = format!(
            "{} {md5} http://data.gdeltproject.org/gdeltv2/{name}",
            bytes.len()
        );
        self.lines.retain(|(n, _)| n != name);
        self.lines.push((name.to_owned(), line));
        self.write_listings();
        name.to_owned()
    }

    /// Replaces the listing line of a file.
    pub fn set_listing_line(&mut self, name: &str, line: &str) {
        for (n, l) in &mut self.lines {
            if n == name {
                *l = line.to_owned();
            }
        }
        self.write_listings();
    }

    /// Writes masterfilelist.txt and lastupdate.txt for the English files, and the
    /// `-translation` listings for the translingual ones.
    fn write_listings(&self) {
        for (translation, suffix) in [(false, ""), (true, "-translation")] {
            let lines: Vec<&(String, String)> = self
                .lines
                .iter()
                .filter(|(n, _)| n.contains(".translation.") == translation)
                .collect();
            if translation && lines.is_empty() {
                continue;
            }
            let mut master: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
            master.push("");
            let dir = self.dir.path().join("gdeltv2");
            std::fs::write(
                dir.join(format!("masterfilelist{suffix}.txt")),
                master.join("\n"),
            )
            .unwrap();
            let newest = lines
                .iter()
                .map(|(n, _)| &n[..14])
                .max()
                .unwrap_or_default()
                .to_owned();
            let last: Vec<&str> = lines
                .iter()
                .filter(|(n, _)| n.starts_with(&newest))
                .map(|(_, l)| l.as_str())
                .collect();
            std::fs::write(
                dir.join(format!("lastupdate{suffix}.txt")),
                last.join("\n") + "\n",
            )
            .unwrap();
        }
    }
}

/// The real application on port 0 over a temporary data directory.
pub struct TestApp {
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub engine: Arc<gdelt_lake::Engine>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), gdelt_lake::AppError>>,
}

pub fn test_config(data_dir: &Path, base_url: &str) -> Config {
    ConfigLoader::new()
        .set("server.listen=127.0.0.1:0")
        .unwrap()
        .set(&format!("lake.data_dir={}", data_dir.display()))
        .unwrap()
        .set(&format!("source.base_url={base_url}"))
        .unwrap()
        .set("source.retry_backoff_ms=10")
        .unwrap()
        .set("ingest.scheduler_enabled=false")
        .unwrap()
        .set("lake.maintenance_enabled=false")
        .unwrap()
        .set("server.http_workers=2")
        .unwrap()
        .build()
        .unwrap()
}

impl TestApp {
    pub async fn start(base_url: &str) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        Self::start_with(test_config(data_dir.path(), base_url), data_dir).await
    }

    pub async fn start_with(config: Config, data_dir: tempfile::TempDir) -> Self {
        let app = Application::build(config, gdelt_lake::logging::discard())
            .await
            .unwrap();
        let base = format!("http://{}", app.local_addr());
        let engine = app.engine();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(app.run(shutdown.clone()));
        Self {
            base,
            data_dir,
            client: reqwest::Client::new(),
            engine,
            shutdown,
            task,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
        )
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
        )
    }

    /// Triggers ingestion of the newest `n` batches and waits for the job to end.
    pub async fn ingest(&self, n: usize) -> Value {
        let (status, body) = self
            .post(&format!("/api/v1/ingest/trigger?n_batches={n}"))
            .await;
        assert_eq!(status, 202, "{body}");
        self.wait(body["status_url"].as_str().unwrap()).await
    }

    /// Polls a job until it ends.
    pub async fn wait(&self, url: &str) -> Value {
        for _ in 0..600 {
            let (status, job) = self.get(url).await;
            assert_eq!(status, 200);
            if job["state"] == "succeeded" || job["state"] == "failed" {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("job did not finish in 30 s");
    }

    /// Parquet files and leftover temporary files under the data directory.
    pub fn lake_files(&self) -> (Vec<String>, Vec<String>) {
        fn walk(dir: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path.display().to_string());
                }
            }
        }
        let mut lake = Vec::new();
        walk(&self.data_dir.path().join("lake"), &mut lake);
        let mut tmp = Vec::new();
        walk(&self.data_dir.path().join("tmp"), &mut tmp);
        lake.sort();
        (lake, tmp)
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
        self.data_dir
    }
}
