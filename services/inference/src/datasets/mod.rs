//! Readers for the public datasets in the data directory (`../shared/data` by default).
//!
//! Each reader turns a CSV into typed rows and, for the labelled sets, into the lead events a
//! CRM would have sent for that row. Training, offline evaluation and the live system all go
//! through those events, so a model sees exactly the same features in each.
//!
//! Nothing here panics on input: a row that cannot be read is skipped and counted.

pub mod leads;
pub mod properties;
pub mod telco;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use csv::StringRecord;

/// A dataset file could not be read at all (a single bad row is skipped, not an error).
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CSV structure is broken beyond one row (for example no header).
    #[error("cannot parse {path} as CSV: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// A column the reader needs is not in the header.
    #[error("{path} has no column {column:?}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
}

/// Rows read from one file, with the count of rows that were skipped as unreadable.
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The rows, in file order.
    pub rows: Vec<T>,
    /// Rows skipped because a required value was missing or malformed.
    pub skipped: usize,
}

/// Column positions by header name.
#[derive(Debug)]
pub(crate) struct Header {
    path: PathBuf,
    index: HashMap<String, usize>,
}

impl Header {
    fn new(path: &Path, record: &StringRecord) -> Self {
        let index = record
            .iter()
            .enumerate()
            .map(|(i, name)| (name.trim().trim_start_matches('\u{feff}').to_owned(), i))
            .collect();
        Header {
            path: path.to_owned(),
            index,
        }
    }

    /// Position of a required column.
    pub(crate) fn require(&self, column: &str) -> Result<usize, DatasetError> {
        self.index
            .get(column)
            .copied()
            .ok_or_else(|| DatasetError::MissingColumn {
                path: self.path.clone(),
                column: column.to_owned(),
            })
    }
}

/// Opens a CSV file and reads its header.
pub(crate) fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, Header), DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.into(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
    let record = reader
        .headers()
        .map_err(|source| DatasetError::Csv {
            path: path.into(),
            source,
        })?
        .clone();
    Ok((reader, Header::new(path, &record)))
}

/// The trimmed text of a field; `None` when blank or absent.
pub(crate) fn text(record: &StringRecord, i: usize) -> Option<&str> {
    record.get(i).map(str::trim).filter(|s| !s.is_empty())
}

/// A number, accepting exponent forms such as `1.225e+006` and surrounding quotes or blanks.
pub(crate) fn number(record: &StringRecord, i: usize) -> Option<f64> {
    text(record, i)
        .map(|s| s.trim_matches('"'))
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Normalises a label to a snake_case token: lower case, every run of other characters
/// becomes one `_`, no leading or trailing `_`. `"Thane & Outskirts"` becomes
/// `"thane_outskirts"`; an empty result is `None`.
pub fn snake_token(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut gap = false;
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `Yes`/`No` (any case) or `1`/`0`; anything else is unknown.
pub(crate) fn yes_no(raw: Option<&str>) -> Option<bool> {
    match raw?.to_ascii_lowercase().as_str() {
        "yes" | "1" | "true" => Some(true),
        "no" | "0" | "false" => Some(false),
        _ => None,
    }
}

/// A stable event id for the `n`-th event derived from a dataset row: 128-bit xxh3 of the
/// parts, written like a UUID. The same row published again for the same tenant and lead gets
/// the same ids, so the stream's duplicate window drops the copy.
pub(crate) fn derived_event_id(parts: &[&str]) -> String {
    let joined = parts.join("\u{1f}");
    let h = xxhash_rust::xxh3::xxh3_128(joined.as_bytes());
    let hex = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Finds the data directory: `LEADBUS_DATA_DIR` when set, else the first `shared/data` (with a
/// `leads/train.csv` inside) found beside `start` or one of its ancestors.
pub fn find_data_dir(start: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LEADBUS_DATA_DIR") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    start
        .ancestors()
        .map(|a| a.join("shared").join("data"))
        .find(|candidate| candidate.join("leads").join("train.csv").is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_snake_case() {
        assert_eq!(
            snake_token("Landing Page Submission").as_deref(),
            Some("landing_page_submission")
        );
        assert_eq!(
            snake_token("Thane & Outskirts").as_deref(),
            Some("thane_outskirts")
        );
        assert_eq!(
            snake_token("Bank transfer (automatic)").as_deref(),
            Some("bank_transfer_automatic")
        );
        assert_eq!(snake_token("E-COMMERCE").as_deref(), Some("e_commerce"));
        assert_eq!(snake_token("  _ "), None);
    }

    #[test]
    fn numbers_accept_r_exponents_and_quotes() {
        let r = StringRecord::from(vec!["1.225e+006", "\"98178\"", "", "x"]);
        assert_eq!(number(&r, 0), Some(1_225_000.0));
        assert_eq!(number(&r, 1), Some(98178.0));
        assert_eq!(number(&r, 2), None);
        assert_eq!(number(&r, 3), None);
        assert_eq!(number(&r, 9), None);
    }

    #[test]
    fn derived_ids_are_stable_and_valid() {
        let a = derived_event_id(&["t", "l", "created"]);
        assert_eq!(a, derived_event_id(&["t", "l", "created"]));
        assert_ne!(a, derived_event_id(&["t2", "l", "created"]));
        assert_eq!(a.len(), 36);
    }
}
