//! A synthetic GDELT 2.0 mirror for benchmarks and volume tests, offline and deterministic.
//!
//! `gdelt-lake synth --days N --out DIR [--seed S]` lays out `DIR/gdeltv2/` as GDELT's server
//! does: one events export and one mentions file per 15-minute batch (96 a day), zipped with a
//! single member, listed with size and md5 in `masterfilelist.txt` and `lastupdate.txt` under
//! GDELT's canonical URLs. Rows follow GDELT's schemas with realistic shapes: 1,000 to 3,000
//! events a batch following the day's rhythm, 4 to 8 mentions an event, skewed event codes,
//! actors and places, empty columns where GDELT leaves them empty, tone around -2, and a share of
//! non-ASCII place names. The same seed gives byte-identical files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTimeBuilder, ZipEntryBuilder};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use md5::{Digest, Md5};

/// What to generate.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub days: u32,
    pub out: PathBuf,
    pub seed: u64,
    /// The first day generated.
    pub start: NaiveDate,
    /// Batches per day, 1..=96 (96 is GDELT's; fewer makes small test mirrors).
    pub batches_per_day: u32,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SynthSummary {
    pub batches: u64,
    pub events: u64,
    pub mentions: u64,
    pub zip_bytes: u64,
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An item by weight.
    fn weighted<'a, T>(&mut self, items: &'a [(u32, T)]) -> &'a T {
        let total: u64 = items.iter().map(|(w, _)| u64::from(*w)).sum();
        let mut pick = self.below(total);
        for (weight, item) in items {
            if pick < u64::from(*weight) {
                return item;
            }
            pick -= u64::from(*weight);
        }
        &items[items.len() - 1].1
    }

    /// Roughly normal (sum of uniforms).
    fn normal(&mut self, mean: f64, sd: f64) -> f64 {
        let sum: f64 = (0..6).map(|_| self.unit()).sum();
        // The sum of six uniforms has variance 1/2.
        mean + (sum - 3.0) * sd / std::f64::consts::FRAC_1_SQRT_2
    }
}

/// CAMEO event codes with GDELT-like frequencies (per mille) and Goldstein scores.
const EVENT_CODES: &[(u32, (&str, f64))] = &[
    (100, ("042", 1.9)),
    (90, ("043", 2.8)),
    (80, ("010", 0.0)),
    (60, ("051", 3.4)),
    (50, ("040", 1.0)),
    (45, ("020", 3.0)),
    (40, ("046", 7.0)),
    (35, ("190", -10.0)),
    (30, ("173", -5.0)),
    (30, ("112", -2.0)),
    (30, ("036", 4.0)),
    (25, ("057", 8.0)),
    (25, ("061", 6.4)),
    (20, ("090", -2.0)),
    (20, ("014", 0.0)),
    (20, ("141", -6.5)),
    (20, ("180", -9.0)),
    (15, ("0211", 3.4)),
    (15, ("193", -10.0)),
    (15, ("130", -4.4)),
    (12, ("111", -2.0)),
    (12, ("070", 7.0)),
    (10, ("084", 5.0)),
    (10, ("120", -4.0)),
    (10, ("150", -7.2)),
    (10, ("160", -4.0)),
    (8, ("1823", -10.0)),
    (8, ("100", -5.0)),
    (6, ("0871", 9.0)),
    (5, ("200", -10.0)),
];

/// Actors: code, name, CAMEO country (empty for non-state actors).
const ACTORS: &[(u32, (&str, &str, &str))] = &[
    (120, ("USA", "UNITED STATES", "USA")),
    (80, ("GOV", "GOVERNMENT", "")),
    (50, ("RUS", "RUSSIA", "RUS")),
    (45, ("UKR", "UKRAINE", "UKR")),
    (40, ("CHN", "CHINA", "CHN")),
    (35, ("COP", "POLICE", "")),
    (30, ("BUS", "COMPANY", "")),
    (30, ("GBR", "UNITED KINGDOM", "GBR")),
    (25, ("MED", "JOURNALIST", "")),
    (25, ("ISR", "ISRAEL", "ISR")),
    (20, ("IND", "INDIA", "IND")),
    (20, ("FRA", "FRANCE", "FRA")),
    (20, ("DEU", "GERMANY", "DEU")),
    (15, ("CVL", "CIVILIAN", "")),
    (15, ("TUR", "TURKEY", "TUR")),
    (12, ("BRA", "BRAZIL", "BRA")),
    (12, ("NGA", "NIGERIA", "NGA")),
    (10, ("EDU", "STUDENT", "")),
    (10, ("MEX", "MEXICO", "MEX")),
    (8, ("AUS", "AUSTRALIA", "AUS")),
];

/// Places: type, full name, FIPS country, ADM1, lat, long, feature id.
type Place = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
    &'static str,
);
const PLACES: &[(u32, Place)] = &[
    (
        140,
        ("1", "United States", "US", "US", 39.828175, -98.5795, "US"),
    ),
    (
        60,
        (
            "3",
            "Washington, District of Columbia, United States",
            "US",
            "USDC",
            38.8951,
            -77.0364,
            "531871",
        ),
    ),
    (
        40,
        (
            "2",
            "Texas, United States",
            "US",
            "USTX",
            31.106,
            -97.6475,
            "TX",
        ),
    ),
    (
        45,
        (
            "4",
            "Kyiv, Kyyiv, Misto, Ukraine",
            "UP",
            "UP12",
            50.4333,
            30.5167,
            "-1044367",
        ),
    ),
    (
        40,
        (
            "4",
            "Moscow, Moskva, Russia",
            "RS",
            "RS48",
            55.7522,
            37.6156,
            "-2960561",
        ),
    ),
    (40, ("1", "China", "CH", "CH", 35.0, 105.0, "CH")),
    (
        35,
        (
            "4",
            "London, London, City of, United Kingdom",
            "UK",
            "UKH9",
            51.5,
            -0.116667,
            "-2601889",
        ),
    ),
    (
        25,
        (
            "4",
            "Paris, France (general), France",
            "FR",
            "FR00",
            48.8667,
            2.33333,
            "-1456928",
        ),
    ),
    (
        25,
        (
            "4",
            "Jerusalem, Israel (general), Israel",
            "IS",
            "IS00",
            31.7833,
            35.2167,
            "-797827",
        ),
    ),
    (25, ("1", "India", "IN", "IN", 20.0, 77.0, "IN")),
    (
        15,
        (
            "4",
            "Zürich, Zurich, Switzerland",
            "SZ",
            "SZ25",
            47.3667,
            8.55,
            "-2554935",
        ),
    ),
    (
        15,
        (
            "4",
            "São Paulo, São Paulo, Brazil",
            "BR",
            "BR27",
            -23.5333,
            -46.6167,
            "-671824",
        ),
    ),
    (
        12,
        (
            "4",
            "İstanbul, İstanbul, Turkey",
            "TU",
            "TU34",
            41.0186,
            28.9647,
            "-755402",
        ),
    ),
    (
        12,
        (
            "4",
            "Abuja, Federal Capital Territory, Nigeria",
            "NI",
            "NI11",
            9.08333,
            7.53333,
            "-1995466",
        ),
    ),
    (
        10,
        (
            "4",
            "Sydney, New South Wales, Australia",
            "AS",
            "AS02",
            -33.8833,
            151.217,
            "-1603135",
        ),
    ),
    (
        8,
        (
            "4",
            "Ciudad de México, The Federal District, Mexico",
            "MX",
            "MX09",
            19.4342,
            -99.1386,
            "-1658079",
        ),
    ),
    (
        5,
        (
            "4",
            "Zagreb, Grad Zagreb, Croatia",
            "HR",
            "HR21",
            45.8,
            16.0,
            "-95041",
        ),
    ),
];

const DOMAINS: &[(u32, &str)] = &[
    (30, "www.reuters.com"),
    (25, "apnews.com"),
    (20, "www.bbc.co.uk"),
    (15, "www.theguardian.com"),
    (15, "www.washingtonpost.com"),
    (12, "www.aljazeera.com"),
    (10, "www.hindustantimes.com"),
    (10, "www.kyivpost.com"),
    (8, "www.smh.com.au"),
    (8, "www.timesofisrael.com"),
    (6, "www.spiegel.de"),
    (5, "www.lemonde.fr"),
    (5, "punchng.com"),
    (4, "www.folha.uol.com.br"),
];

/// Events in a batch at `time`: 1,000 to 3,000, more during the day in Europe and America.
fn batch_size(rng: &mut Rng, time: NaiveDateTime) -> u64 {
    let hour = f64::from(time.hour()) + f64::from(time.minute()) / 60.0;
    // 0 at 04:00 UTC (night in Europe and America), 1 at 16:00.
    let rhythm = 0.5 - 0.5 * ((hour - 4.0) / 24.0 * std::f64::consts::TAU).cos();
    1000 + (rhythm * 1600.0) as u64 + rng.below(400)
}

fn quad_class(code: &str) -> u8 {
    match &code[..2] {
        "01" | "02" | "03" | "04" | "05" => 1,
        "06" | "07" | "08" => 2,
        "09" | "10" | "11" | "12" | "13" => 3,
        _ => 4,
    }
}

/// One event row (61 fields, no newline).
fn event_row(rng: &mut Rng, id: u64, batch: NaiveDateTime, out: &mut String) {
    let age_days = if rng.chance(0.8) {
        0
    } else if rng.chance(0.75) {
        rng.below(7) as i64
    } else {
        rng.below(365) as i64
    };
    let day = batch.date() - Duration::days(age_days);
    let fraction = f64::from(day.year()) + f64::from(day.ordinal0()) / 365.0;
    let _ = write!(
        out,
        "{id}\t{}\t{}\t{}\t{fraction:.4}",
        day.format("%Y%m%d"),
        day.format("%Y%m"),
        day.year()
    );
    for empty_share in [0.08, 0.35] {
        if rng.chance(empty_share) {
            out.push_str("\t\t\t\t\t\t\t\t\t\t");
        } else {
            let (code, name, country) = *rng.weighted(ACTORS);
            let _ = write!(out, "\t{code}\t{name}\t{country}\t\t\t\t\t");
            // Type1Code: the code itself for non-state actors.
            out.push_str(if country.is_empty() { code } else { "" });
            out.push_str("\t\t");
        }
    }
    let (code, goldstein) = *rng.weighted(EVENT_CODES);
    let mentions = 1 + rng.below(4) + if rng.chance(0.1) { rng.below(40) } else { 0 };
    let sources = 1 + rng.below(mentions);
    let tone = rng.normal(-2.0, 3.5).clamp(-25.0, 20.0);
    let _ = write!(
        out,
        "\t{}\t{code}\t{}\t{}\t{}\t{goldstein:.1}\t{mentions}\t{sources}\t{mentions}\t{tone}",
        u8::from(rng.chance(0.4)),
        &code[..3.min(code.len())],
        &code[..2],
        quad_class(code),
    );
    for empty_share in [0.2, 0.4, 0.1] {
        if rng.chance(empty_share) {
            out.push_str("\t0\t\t\t\t\t\t\t");
        } else {
            let (kind, name, country, adm1, lat, long, feature) = *rng.weighted(PLACES);
            let _ = write!(
                out,
                "\t{kind}\t{name}\t{country}\t{adm1}\t\t{lat}\t{long}\t{feature}"
            );
        }
    }
    let domain = rng.weighted(DOMAINS);
    let _ = write!(
        out,
        "\t{}\thttps://{domain}/news/{}/story-{id}",
        batch.format("%Y%m%d%H%M%S"),
        day.format("%Y/%m/%d")
    );
}

/// One mentions row (16 fields, no newline) of event `id` first seen at `event_time`.
fn mention_row(
    rng: &mut Rng,
    id: u64,
    event_time: NaiveDateTime,
    batch: NaiveDateTime,
    out: &mut String,
) {
    let domain = rng.weighted(DOMAINS);
    let length = 300 + rng.below(9000);
    let _ = write!(
        out,
        "{id}\t{}\t{}\t1\t{}\thttps://{domain}/story/{}\t{}\t{}\t{}\t{}\t{}\t{}\t{length}\t{}\t\t",
        event_time.format("%Y%m%d%H%M%S"),
        batch.format("%Y%m%d%H%M%S"),
        domain.trim_start_matches("www."),
        rng.below(1 << 40),
        1 + rng.below(30),
        rng.below(length) as i64 - 1,
        rng.below(length) as i64 - 1,
        rng.below(length),
        u8::from(rng.chance(0.7)),
        10 * (1 + rng.below(10)),
        rng.normal(-2.0, 3.0).clamp(-20.0, 20.0),
    );
}

async fn write_zip(
    dir: &Path,
    member: &str,
    content: &[u8],
) -> std::io::Result<(String, u64, String)> {
    let mut writer = ZipFileWriter::new(Vec::<u8>::new());
    // A fixed time: the same seed gives the same bytes.
    let when = ZipDateTimeBuilder::new()
        .year(2015)
        .month(2)
        .day(18)
        .hour(23)
        .minute(0)
        .second(0)
        .build();
    let entry = ZipEntryBuilder::new(member.to_owned().into(), Compression::Deflate)
        .last_modification_date(when);
    writer
        .write_entry_whole(entry, content)
        .await
        .map_err(std::io::Error::other)?;
    let bytes = writer.close().await.map_err(std::io::Error::other)?;
    let name = format!("{member}.zip");
    tokio::fs::write(dir.join(&name), &bytes).await?;
    Ok((
        name,
        bytes.len() as u64,
        format!("{:x}", Md5::digest(&bytes)),
    ))
}

/// Writes the mirror.
///
/// # Errors
/// Disk errors.
pub async fn generate(options: &SynthOptions) -> std::io::Result<SynthSummary> {
    let dir = options.out.join("gdeltv2");
    tokio::fs::create_dir_all(&dir).await?;
    let mut rng = Rng(options.seed ^ 0x6764_656C_742D_6C6B);
    let mut next_id = 1_000_000_000u64;
    let mut summary = SynthSummary::default();
    let mut listing = String::new();
    let mut last_update = String::new();
    let step = 96 / options.batches_per_day.clamp(1, 96);
    // Events of the previous batches that later mentions point back to.
    let mut recent: Vec<(u64, NaiveDateTime)> = Vec::new();
    for day in 0..options.days {
        let date = options.start + Duration::days(i64::from(day));
        for slot in 0..options.batches_per_day.clamp(1, 96) {
            let batch = date.and_hms_opt(0, 0, 0).expect("midnight")
                + Duration::minutes(i64::from(slot * step) * 15);
            let stamp = batch.format("%Y%m%d%H%M%S").to_string();
            let count = batch_size(&mut rng, batch);
            let mut events = String::with_capacity(count as usize * 520);
            let mut mentions = String::with_capacity(count as usize * 6 * 230);
            let first = next_id;
            for _ in 0..count {
                let id = next_id;
                next_id += 1;
                event_row(&mut rng, id, batch, &mut events);
                events.push('\n');
                for _ in 0..4 + rng.below(5) {
                    let (event, time) = if !recent.is_empty() && rng.chance(0.15) {
                        recent[rng.below(recent.len() as u64) as usize]
                    } else {
                        (id, batch)
                    };
                    mention_row(&mut rng, event, time, batch, &mut mentions);
                    mentions.push('\n');
                    summary.mentions += 1;
                }
            }
            summary.events += count;
            summary.batches += 1;
            recent.clear();
            recent.extend((first..next_id).step_by(97).map(|id| (id, batch)));
            last_update.clear();
            for (member, content) in [
                (format!("{stamp}.export.CSV"), &events),
                (format!("{stamp}.mentions.CSV"), &mentions),
            ] {
                let (name, size, md5) = write_zip(&dir, &member, content.as_bytes()).await?;
                summary.zip_bytes += size;
                let line = format!("{size} {md5} http://data.gdeltproject.org/gdeltv2/{name}\n");
                listing.push_str(&line);
                last_update.push_str(&line);
            }
        }
    }
    tokio::fs::write(dir.join("masterfilelist.txt"), &listing).await?;
    tokio::fs::write(dir.join("lastupdate.txt"), &last_update).await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::{RowFormat, RowParser, EVENTS, MENTIONS};

    #[tokio::test]
    async fn a_seed_gives_the_same_mirror_and_every_row_parses() {
        let options = |out: &Path| SynthOptions {
            days: 1,
            out: out.to_owned(),
            seed: 7,
            start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            batches_per_day: 2,
        };
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let summary = generate(&options(a.path())).await.unwrap();
        generate(&options(b.path())).await.unwrap();
        let listing = std::fs::read_to_string(a.path().join("gdeltv2/masterfilelist.txt")).unwrap();
        assert_eq!(
            listing,
            std::fs::read_to_string(b.path().join("gdeltv2/masterfilelist.txt")).unwrap()
        );
        assert_eq!(listing.lines().count(), 4);
        assert!(listing.contains("/gdeltv2/20240101120000.mentions.CSV.zip"));
        assert_eq!(summary.batches, 2);
        assert!((2000..=6000).contains(&summary.events), "{summary:?}");
        assert!(
            (4 * summary.events..=8 * summary.events).contains(&summary.mentions),
            "{summary:?}"
        );
        // The generated rows fit the real schemas exactly.
        let mut events = RowParser::new(&EVENTS, RowFormat::Native, "english");
        let mut mentions = RowParser::new(&MENTIONS, RowFormat::Native, "english");
        let lines = generated_lines(a.path(), "20240101000000.export.CSV").await;
        for (n, line) in lines.iter().enumerate() {
            events.push_line(n as u64 + 1, line.as_bytes()).unwrap();
        }
        let lines = generated_lines(a.path(), "20240101000000.mentions.CSV").await;
        for (n, line) in lines.iter().enumerate() {
            mentions.push_line(n as u64 + 1, line.as_bytes()).unwrap();
        }
        assert!(events.buffered_rows() >= 1000);
        assert!(mentions.buffered_rows() >= 4 * events.buffered_rows());
    }

    #[test]
    fn batch_sizes_span_1000_to_3000_over_a_day() {
        let mut rng = Rng(1);
        let day = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let sizes: Vec<u64> = (0..96)
            .map(|slot| {
                let time = day.and_hms_opt(slot / 4, (slot % 4) * 15, 0).unwrap();
                batch_size(&mut rng, time)
            })
            .collect();
        assert!(sizes.iter().all(|s| (1000..3000).contains(s)), "{sizes:?}");
        assert!(*sizes.iter().min().unwrap() < 1400, "{sizes:?}");
        assert!(*sizes.iter().max().unwrap() > 2600, "{sizes:?}");
    }

    async fn generated_lines(root: &Path, member: &str) -> Vec<String> {
        let bytes = std::fs::read(root.join("gdeltv2").join(format!("{member}.zip"))).unwrap();
        let zip = async_zip::base::read::mem::ZipFileReader::new(bytes)
            .await
            .unwrap();
        assert_eq!(zip.file().entries()[0].filename().as_str().unwrap(), member);
        let mut reader = zip.reader_with_entry(0).await.unwrap();
        let mut text = String::new();
        futures_util::io::AsyncReadExt::read_to_string(&mut reader, &mut text)
            .await
            .unwrap();
        text.lines().map(str::to_owned).collect()
    }
}
