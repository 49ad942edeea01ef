//! `outputs.format: parquet`: the rows of `injections.csv` as Parquet files,
//! one per window of the campaign (`injections/part-00000.parquet`, ...),
//! that pandas, polars and DuckDB read as one table. In: the rows as the
//! CSV has them. Out: typed columns (integers, floats, booleans, text),
//! zstd-compressed, each part written whole and renamed into place, so a
//! killed run leaves whole parts only.
//!
//! Read back ([`PartLines`]), a part gives exactly the CSV lines it was
//! written from: the sums file, resume, merge and `report` work on those
//! lines as on `injections.csv`, and their guarantees carry over.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, FloatType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;

use super::results::RESULT_COLUMNS;
use crate::error::{Error, Result};
use crate::faults;
use crate::inject::SiteValues;
use crate::report::CsvLines;

/// The folder of the parts, beside `injections.sums`.
pub const FOLDER: &str = "injections";

/// A column's Parquet type; an empty CSV field is null.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    /// Unsigned 64-bit (ids and seeds), stored as INT64 marked unsigned.
    UInt,
    Float,
    /// A fault site's value: float64, written as [`SiteValues::text`]
    /// (an int32 word or a float64 value is not always a float32).
    Double,
    Bool,
    Text,
}

/// The kind of each column of a header: the fault list's and the result
/// columns by position, then each hardened model's top-1, outcome and
/// top-k hit (found by its `_outcome` column), then the saved outputs.
fn kinds(header: &[String]) -> Vec<Kind> {
    use Kind::*;
    const FAULT: [Kind; 15] = [
        UInt, Text, Text, Text, Text, Text, Text, Text, Text, Text, UInt, Text, UInt, UInt, UInt,
    ];
    const RESULT: [Kind; 14] = [
        Int, Int, Int, Int, Text, Bool, Double, Double, Text, Text, Text, Bool, Bool, Text,
    ];
    const _: () = assert!(FAULT.len() == faults::csv::COLUMNS.len());
    const _: () = assert!(RESULT.len() == RESULT_COLUMNS.len());
    let outcome = |i: usize| header.get(i).is_some_and(|c| c.ends_with("_outcome"));
    (0..header.len())
        .map(|i| match i {
            i if i < FAULT.len() => FAULT[i],
            i if i < FAULT.len() + RESULT.len() => RESULT[i - FAULT.len()],
            i if outcome(i + 1) => Int,
            i if outcome(i) => Text,
            i if outcome(i - 1) => Bool,
            i => match header[i].as_str() {
                "false_positives" | "false_negatives" | "matched" | "positions_changed" => Int,
                "pixels_changed" | "miou" | "max_abs_change" | "max_rel_change"
                | "max_iou_shift" | "max_score_shift" => Float,
                _ => Text,
            },
        })
        .collect()
}

/// One column's values of a part being written.
enum Column {
    Int(Vec<Option<i64>>),
    /// The bits of each u64 as an i64, as Parquet stores UINT_64.
    UInt(Vec<Option<i64>>),
    Float(Vec<Option<f32>>),
    Double(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<ByteArray>),
}

impl Column {
    fn new(kind: Kind) -> Column {
        match kind {
            Kind::Int => Column::Int(Vec::new()),
            Kind::UInt => Column::UInt(Vec::new()),
            Kind::Float => Column::Float(Vec::new()),
            Kind::Double => Column::Double(Vec::new()),
            Kind::Bool => Column::Bool(Vec::new()),
            Kind::Text => Column::Text(Vec::new()),
        }
    }

    /// Appends a CSV field; `false` if it is not of the column's kind, or
    /// would not read back as the same text.
    fn push(&mut self, field: &str) -> bool {
        fn typed<T: std::str::FromStr>(
            values: &mut Vec<Option<T>>,
            field: &str,
            text: impl Fn(&T) -> String,
        ) -> bool {
            if field.is_empty() {
                values.push(None);
                return true;
            }
            match field.parse::<T>() {
                Ok(v) if text(&v) == field => {
                    values.push(Some(v));
                    true
                }
                _ => false,
            }
        }
        match self {
            Column::Int(v) => typed(v, field, i64::to_string),
            Column::UInt(v) => {
                let mut unsigned = Vec::new();
                let ok = typed(&mut unsigned, field, u64::to_string);
                v.extend(unsigned.into_iter().map(|u| u.map(|u| u as i64)));
                ok
            }
            Column::Float(v) => typed(v, field, |f| format!("{f:e}")),
            Column::Double(v) => typed(v, field, |&f| SiteValues::text(f)),
            Column::Bool(v) => typed(v, field, bool::to_string),
            Column::Text(v) => {
                v.push(ByteArray::from(field));
                true
            }
        }
    }

    fn physical(&self) -> Physical {
        match self {
            Column::Int(_) | Column::UInt(_) => Physical::INT64,
            Column::Float(_) => Physical::FLOAT,
            Column::Double(_) => Physical::DOUBLE,
            Column::Bool(_) => Physical::BOOLEAN,
            Column::Text(_) => Physical::BYTE_ARRAY,
        }
    }
}

/// The rows of one window, gathered column by column until the part is
/// written.
pub struct PartWriter {
    dir: PathBuf,
    header: Vec<String>,
    columns: Vec<Column>,
    rows: usize,
    /// The number of the next part.
    next: usize,
}

impl PartWriter {
    /// A writer of parts into `dir` (created), numbered from `next`.
    pub fn new(dir: &Path, header: &[String], next: usize) -> Result<PartWriter> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(PartWriter {
            dir: dir.to_path_buf(),
            header: header.to_vec(),
            columns: kinds(header).into_iter().map(Column::new).collect(),
            rows: 0,
            next,
        })
    }

    /// Adds a row (CSV fields, in header order).
    pub fn row(&mut self, fields: &[String]) -> Result<()> {
        let bad = |msg: String| Error::Data {
            path: self.dir.clone(),
            msg,
        };
        if fields.len() != self.columns.len() {
            return Err(bad(format!(
                "a row of {} fields for {} columns",
                fields.len(),
                self.columns.len()
            )));
        }
        for ((column, field), name) in self.columns.iter_mut().zip(fields).zip(&self.header) {
            if !column.push(field) {
                return Err(bad(format!(
                    "column {name}: {field:?} is not a {:?} value",
                    column.physical()
                )));
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Writes the rows gathered since the last part as the next part
    /// (nothing when there are none), synced and renamed into place.
    pub fn write_part(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let path = self.dir.join(part_name(self.next));
        let columns = std::mem::replace(
            &mut self.columns,
            kinds(&self.header).into_iter().map(Column::new).collect(),
        );
        let schema = schema(&self.header, &columns).map_err(|e| parquet_error(&path, e))?;
        crate::output::write_via_temp(&path, |out| {
            write_columns(out, schema, columns).map_err(|e| parquet_error(&path, e))
        })?;
        self.rows = 0;
        self.next += 1;
        Ok(())
    }
}

/// The file name of part `n`.
fn part_name(n: usize) -> String {
    format!("part-{n:05}.parquet")
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::io(path, std::io::Error::other(e.to_string()))
}

fn schema(header: &[String], columns: &[Column]) -> parquet::errors::Result<Arc<Type>> {
    let fields = header
        .iter()
        .zip(columns)
        .map(|(name, column)| {
            let builder = Type::primitive_type_builder(name, column.physical());
            let builder = match column {
                Column::Text(_) => builder
                    .with_repetition(Repetition::REQUIRED)
                    .with_logical_type(Some(LogicalType::String)),
                Column::UInt(_) => builder
                    .with_repetition(Repetition::OPTIONAL)
                    .with_logical_type(Some(LogicalType::integer(64, false))),
                _ => builder.with_repetition(Repetition::OPTIONAL),
            };
            builder.build().map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    Ok(Arc::new(
        Type::group_type_builder("injections")
            .with_fields(fields)
            .build()?,
    ))
}

/// Writes one row group of `columns` to `out`.
fn write_columns<W: std::io::Write + Send>(
    out: W,
    schema: Arc<Type>,
    columns: Vec<Column>,
) -> parquet::errors::Result<()> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .build();
    let mut writer = SerializedFileWriter::new(out, schema, Arc::new(properties))?;
    let mut group = writer.next_row_group()?;
    for column in columns {
        let mut writer = group.next_column()?.expect("a writer per schema column");
        /// The values that are not null, and the definition levels.
        fn present<T: Clone>(values: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
            let levels = values.iter().map(|v| i16::from(v.is_some())).collect();
            (values.iter().flatten().cloned().collect(), levels)
        }
        match &column {
            Column::Int(v) | Column::UInt(v) => {
                let (values, levels) = present(v);
                let w = writer.typed::<Int64Type>();
                w.write_batch(&values, Some(&levels), None)?;
            }
            Column::Float(v) => {
                let (values, levels) = present(v);
                let w = writer.typed::<FloatType>();
                w.write_batch(&values, Some(&levels), None)?;
            }
            Column::Double(v) => {
                let (values, levels) = present(v);
                let w = writer.typed::<DoubleType>();
                w.write_batch(&values, Some(&levels), None)?;
            }
            Column::Bool(v) => {
                let (values, levels) = present(v);
                let w = writer.typed::<BoolType>();
                w.write_batch(&values, Some(&levels), None)?;
            }
            Column::Text(v) => {
                writer.typed::<ByteArrayType>().write_batch(v, None, None)?;
            }
        }
        writer.close()?;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}

/// The parts in `dir`, in order: their paths (each named `part-N`, N from
/// 0 without a gap).
pub fn parts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    loop {
        let path = dir.join(part_name(found.len()));
        if !path.exists() {
            return Ok(found);
        }
        found.push(path);
    }
}

/// The CSV lines of the parts of a folder, the header first, a part at a
/// time, and how many bytes they would take in `injections.csv`.
pub struct PartLines {
    /// The parts folder.
    pub dir: PathBuf,
    parts: std::vec::IntoIter<PathBuf>,
    rows: std::vec::IntoIter<String>,
    header: Option<String>,
    /// The length of the lines given so far, as CSV.
    pub bytes: u64,
    /// The CSV length at the end of each part read so far.
    pub part_ends: Vec<u64>,
}

impl PartLines {
    /// The lines of the parts in `dir`.
    pub fn open(dir: &Path) -> Result<PartLines> {
        Ok(PartLines {
            dir: dir.to_path_buf(),
            parts: parts(dir)?.into_iter(),
            rows: Vec::new().into_iter(),
            header: None,
            bytes: 0,
            part_ends: Vec::new(),
        })
    }

    /// The next line, without its newline (`None` after the last).
    pub fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(line) = self.rows.next() {
                self.bytes += line.len() as u64 + 1;
                if self.rows.len() == 0 {
                    self.part_ends.push(self.bytes);
                }
                return Ok(Some(line));
            }
            let Some(path) = self.parts.next() else {
                return Ok(None);
            };
            let (header, rows) = read_part(&path)?;
            match &self.header {
                None => {
                    self.bytes += header.len() as u64 + 1;
                    self.header = Some(header.clone());
                    self.rows = rows.into_iter();
                    return Ok(Some(header));
                }
                Some(h) if *h != header => {
                    return Err(Error::Data {
                        path,
                        msg: "its columns differ from the first part's".into(),
                    })
                }
                Some(_) => self.rows = rows.into_iter(),
            }
        }
    }
}

/// A part's header and rows as CSV lines.
fn read_part(path: &Path) -> Result<(String, Vec<String>)> {
    let bad = |e: parquet::errors::ParquetError| Error::Data {
        path: path.to_path_buf(),
        msg: format!("not a readable Parquet part: {e}"),
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(bad)?;
    let names: Vec<String> = (reader.metadata().file_metadata().schema().get_fields())
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let mut csv = CsvLines::default();
    let mut rows = Vec::new();
    for row in reader.get_row_iter(None).map_err(bad)? {
        let row = row.map_err(bad)?;
        let fields: Vec<String> = row
            .get_column_iter()
            .map(|(_, field)| field_text(field))
            .collect();
        rows.push(csv.line(&fields));
    }
    Ok((csv.line(&names), rows))
}

/// A value as the CSV field it was written from.
fn field_text(field: &Field) -> String {
    match field {
        Field::Null => String::new(),
        Field::Long(v) => v.to_string(),
        Field::ULong(v) => v.to_string(),
        Field::Float(v) => format!("{v:e}"),
        Field::Double(v) => SiteValues::text(*v),
        Field::Bool(v) => v.to_string(),
        Field::Str(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(hardened: &[&str], saved: bool) -> Vec<String> {
        let hardened: Vec<String> = hardened.iter().map(|h| h.to_string()).collect();
        let layout = super::super::results::Layout {
            hardened: &hardened,
            top_k: 5,
            save_outputs: saved,
            task: &crate::classify::Task::Classification,
        };
        layout.header()
    }

    #[test]
    fn columns_get_their_kinds_by_position() {
        let h = header(&["ranger"], true);
        let kinds = kinds(&h);
        let kind = |name: &str| kinds[h.iter().position(|c| c == name).unwrap()];
        assert_eq!(kind("draw"), Kind::UInt);
        assert_eq!(kind("sample"), Kind::Text);
        assert_eq!(kind("label"), Kind::Int);
        assert_eq!(kind("original_value"), Kind::Double);
        assert_eq!(kind("top5_hit"), Kind::Bool);
        assert_eq!(kind("ranger_top1"), Kind::Int);
        assert_eq!(kind("ranger_outcome"), Kind::Text);
        assert_eq!(kind("ranger_top5_hit"), Kind::Bool);
        assert_eq!(kind("golden_top5"), Kind::Text);
        assert_eq!(kind("ranger_top5"), Kind::Text);
    }

    /// Every value reads back as the CSV field it was written from: nulls,
    /// the extremes of each type, NaN, infinities, -0, site values that
    /// are not float32 (an int32 word) and quoted text.
    #[test]
    fn a_part_reads_back_as_its_csv_lines() {
        let h = header(&[], false);
        let dir = tempfile::tempdir().unwrap();
        let mut writer = PartWriter::new(dir.path(), &h, 0).unwrap();
        let mut rows = Vec::new();
        let int32_word = SiteValues::text(123_456_789.0);
        assert_eq!(int32_word, "1.23456789e8");
        for (i, value) in [
            "1.5e0",
            "NaN",
            "inf",
            "-inf",
            "-0e0",
            "",
            "1e-45",
            "1.1e0",
            &int32_word,
        ]
        .into_iter()
        .enumerate()
        {
            let mut row: Vec<String> = h.iter().map(|_| String::new()).collect();
            let set = |row: &mut Vec<String>, name: &str, v: String| {
                row[h.iter().position(|c| c == name).unwrap()] = v;
            };
            set(&mut row, "draw", u64::MAX.to_string());
            set(&mut row, "fault_id", i.to_string());
            set(&mut row, "label", (-(i as i64)).to_string());
            set(&mut row, "layer", format!("/a,\"b\"\n{i}"));
            set(&mut row, "original_value", value.to_string());
            set(&mut row, "top5_hit", (i % 2 == 0).to_string());
            writer.row(&row).unwrap();
            rows.push(CsvLines::default().line(&row));
        }
        writer.write_part().unwrap();
        let (head, read) = read_part(&dir.path().join(part_name(0))).unwrap();
        assert_eq!(head, CsvLines::default().line(&h));
        assert_eq!(read, rows);
        // A field that would not read back the same is refused, named.
        let mut bad: Vec<String> = h.iter().map(|_| String::new()).collect();
        bad[h.iter().position(|c| c == "original_value").unwrap()] = "1.50".into();
        let err = writer.row(&bad).unwrap_err().to_string();
        assert!(err.contains("original_value"), "{err}");
    }
}
