//! Names for codes, from tables the project ships in `assets/labels/` (compiled into the
//! binary): CAMEO event codes, CAMEO country codes (actors), FIPS 10-4 country codes (places)
//! and GDELT's quad classes. Each dimension has its own table, so a FIPS code is never named
//! as a CAMEO one (`CH` is China in FIPS; `CHN` is China in CAMEO).

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::query::Dimension;

/// GDELT's quad classes.
pub const QUAD_CLASSES: [(&str, &str); 4] = [
    ("1", "Verbal Cooperation"),
    ("2", "Material Cooperation"),
    ("3", "Verbal Conflict"),
    ("4", "Material Conflict"),
];

/// A code table: code to label.
type Table = HashMap<&'static str, &'static str>;

/// Parses a shipped `code\tlabel` table (header line first). The tables are compiled in, so
/// a malformed line is a build defect and panics (caught by the unit tests).
fn parse(text: &'static str) -> Table {
    text.lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            line.split_once('\t')
                .unwrap_or_else(|| panic!("label table line without a tab: {line:?}"))
        })
        .collect()
}

static CAMEO_EVENTS: LazyLock<Table> =
    LazyLock::new(|| parse(include_str!("../assets/labels/cameo_event_codes.tsv")));
static CAMEO_COUNTRIES: LazyLock<Table> =
    LazyLock::new(|| parse(include_str!("../assets/labels/cameo_countries.tsv")));
static FIPS_COUNTRIES: LazyLock<Table> =
    LazyLock::new(|| parse(include_str!("../assets/labels/fips_countries.tsv")));

/// The label of `key` in `dimension`, where its table knows it.
pub fn label(dimension: Dimension, key: &str) -> Option<&'static str> {
    match dimension {
        Dimension::QuadClass => QUAD_CLASSES
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v),
        Dimension::EventCode | Dimension::EventBase | Dimension::EventRoot => {
            CAMEO_EVENTS.get(key).copied()
        }
        Dimension::ActionCountry => FIPS_COUNTRIES.get(key).copied(),
        Dimension::Actor1Country | Dimension::Actor2Country => CAMEO_COUNTRIES.get(key).copied(),
        Dimension::SourceDomain => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_have_labels_and_others_none() {
        assert_eq!(label(Dimension::EventRoot, "04"), Some("Consult"));
        assert_eq!(label(Dimension::EventRoot, "4"), None);
        assert_eq!(
            label(Dimension::EventCode, "010"),
            Some("Make statement, not specified below")
        );
        assert_eq!(label(Dimension::QuadClass, "4"), Some("Material Conflict"));
        assert_eq!(label(Dimension::SourceDomain, "bbc.co.uk"), None);
    }

    #[test]
    fn the_official_tables_flaws_are_fixed() {
        // GDELT's CAMEO.eventcodes.txt runs 106 into the 1056 line and double-encodes 044.
        assert_eq!(
            label(Dimension::EventBase, "106"),
            Some("Demand withdrawal")
        );
        assert_eq!(
            label(Dimension::EventCode, "1056"),
            Some("Demand de-escalation of military engagement")
        );
        assert_eq!(
            label(Dimension::EventCode, "044"),
            Some("Meet at a \u{201c}third\u{201d} location")
        );
        assert_eq!(
            label(Dimension::EventRoot, "20"),
            Some("Use unconventional mass violence")
        );
        assert_eq!(label(Dimension::Actor1Country, "COL"), Some("Colombia"));
    }

    #[test]
    fn country_code_systems_never_mix() {
        assert_eq!(label(Dimension::ActionCountry, "CH"), Some("China"));
        assert_eq!(
            label(Dimension::ActionCountry, "UK"),
            Some("United Kingdom")
        );
        assert_eq!(label(Dimension::ActionCountry, "UP"), Some("Ukraine"));
        assert_eq!(label(Dimension::ActionCountry, "CHN"), None);
        assert_eq!(label(Dimension::Actor2Country, "CHN"), Some("China"));
        assert_eq!(label(Dimension::Actor2Country, "CH"), None);
        assert_eq!(label(Dimension::Actor1Country, "UKR"), Some("Ukraine"));
    }

    #[test]
    fn tables_are_complete_and_unambiguous() {
        for (text, rows, width) in [
            (
                include_str!("../assets/labels/cameo_event_codes.tsv"),
                311,
                2..=4,
            ),
            (
                include_str!("../assets/labels/cameo_countries.tsv"),
                263,
                3..=3,
            ),
            (
                include_str!("../assets/labels/fips_countries.tsv"),
                274,
                2..=2,
            ),
        ] {
            let table = parse(text);
            assert_eq!(table.len(), rows, "duplicate or missing codes");
            assert_eq!(text.lines().count(), rows + 1);
            for (code, label) in &table {
                assert!(width.contains(&code.len()), "code {code:?}");
                assert!(
                    !label.is_empty() && label.trim() == *label,
                    "label {label:?}"
                );
            }
        }
    }
}
