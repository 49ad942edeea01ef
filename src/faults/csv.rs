//! Fault lists as CSV, for people and other tools. In/out: a `FaultList`
//! (CSV keeps the rows, not the metadata).
//!
//! Columns, in this order: `fault_id, sample, target, layer, tensor, coord,
//! fault_model, dtype, bit, value`, then `injection, scope, sweep, node,
//! draw`. `sample` is `12`, `0..32` or `*`; `coord` and `bit` are
//! comma-separated (quoted); `bit` is `-` when the model takes none; `value`
//! is the constant, `[min,max]` for random_value, or `-`. Floats are written
//! in Rust's shortest round-trip form, so a list survives binary -> CSV ->
//! binary bit for bit. On import the first ten columns are required, the
//! further ones default (injection = fault_id, scope transient, sweep 0, node
//! from the model, draw from fault_id), unknown columns are ignored, and
//! every row is checked against the model when one is given.

use std::collections::HashMap;
use std::path::Path;

use super::{check_node, join, rng, Fault, FaultModel, NumFormat, Samples, Scope, Sites, Target};
use crate::error::{Error, Result};

/// The column names, in order.
pub const COLUMNS: [&str; 15] = [
    "fault_id",
    "sample",
    "target",
    "layer",
    "tensor",
    "coord",
    "fault_model",
    "dtype",
    "bit",
    "value",
    "injection",
    "scope",
    "sweep",
    "node",
    "draw",
];
const REQUIRED: usize = 10;

/// One row's fields, in [`COLUMNS`] order.
pub fn row(f: &Fault) -> [String; 15] {
    [
        f.fault_id.to_string(),
        f.sample.to_string(),
        f.target.to_string(),
        f.layer.clone(),
        f.tensor.clone(),
        join(&f.coord),
        f.model.name(),
        f.dtype.to_string(),
        if f.bits.is_empty() {
            "-".into()
        } else {
            join(&f.bits)
        },
        value_field(&f.model),
        f.injection.to_string(),
        f.scope.name().into(),
        f.sweep.to_string(),
        f.node.to_string(),
        f.draw.to_string(),
    ]
}

fn value_field(model: &FaultModel) -> String {
    match model {
        FaultModel::Constant(c) => format!("{c:?}"),
        FaultModel::RandomValue { min, max } => format!("[{min:?},{max:?}]"),
        _ => "-".into(),
    }
}

/// Writes the rows of `faults` as they come, atomically (a failed write
/// leaves no partial file); returns how many.
pub fn write_rows(path: &Path, faults: impl Iterator<Item = Result<Fault>>) -> Result<u64> {
    crate::output::write_via_temp(path, |out| {
        let io = |e: ::csv::Error| Error::io(path, std::io::Error::other(e));
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(COLUMNS).map_err(io)?;
        let mut rows = 0;
        for f in faults {
            w.write_record(row(&f?)).map_err(io)?;
            rows += 1;
        }
        w.flush().map_err(|e| Error::io(path, e))?;
        Ok(rows)
    })
}

/// Reads a CSV list a row at a time. With `sites`, every row is checked
/// against the model (and `node` filled in from it); `samples` bounds the
/// sample column.
pub struct Reader<'s> {
    records: ::csv::StringRecordsIntoIter<std::fs::File>,
    index: HashMap<String, usize>,
    sites: Option<&'s Sites>,
    samples: Option<u64>,
    path: std::path::PathBuf,
}

impl<'s> Reader<'s> {
    /// Opens the file and checks its header.
    pub fn open(path: &Path, sites: Option<&'s Sites>, samples: Option<u64>) -> Result<Self> {
        // A FIFO or device would block or never end (exit 9).
        let file = crate::files::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => bad(path, None, e.to_string()),
            _ => Error::io(path, e),
        })?;
        let mut r = ::csv::ReaderBuilder::new()
            .trim(::csv::Trim::All)
            .from_reader(file);
        let header = r
            .headers()
            .map_err(|e| bad(path, Some(1), e.to_string()))?
            .clone();
        let index: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        if let Some(missing) = COLUMNS[..REQUIRED]
            .iter()
            .find(|c| !index.contains_key(**c))
        {
            return Err(bad(
                path,
                Some(1),
                format!(
                    "header: column '{missing}' is missing (required, in order: {})",
                    COLUMNS[..REQUIRED].join(", ")
                ),
            ));
        }
        if sites.is_none() && !index.contains_key("node") {
            return Err(bad(
                path,
                Some(1),
                "header: no 'node' column; give the model (--model) to resolve layer names".into(),
            ));
        }
        Ok(Reader {
            records: r.into_records(),
            index,
            sites,
            samples,
            path: path.to_path_buf(),
        })
    }

    fn fault(&self, rec: ::csv::StringRecord) -> Result<Fault> {
        let line = rec.position().map(|p| p.line() as usize);
        let bad = |msg: String| bad(&self.path, line, msg);
        let get = |c: &str| self.index.get(c).and_then(|&i| rec.get(i));
        let mut fault = parse_row(&get).map_err(bad)?;
        if let Some(sites) = self.sites {
            fault.node = check_node(&fault, sites, self.samples, get("node").is_some())
                .map_err(|m| bad(format!("fault {}: {m}", fault.fault_id)))?;
        }
        Ok(fault)
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<Fault>;

    fn next(&mut self) -> Option<Result<Fault>> {
        let rec = self.records.next()?;
        Some(
            rec.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize);
                bad(&self.path, line, e.to_string())
            })
            .and_then(|rec| self.fault(rec)),
        )
    }
}

fn bad(path: &Path, line: Option<usize>, msg: String) -> Error {
    Error::FaultList {
        path: path.to_path_buf(),
        line,
        msg,
    }
}

/// One row from its fields; the error names the column.
fn parse_row<'a>(get: &dyn Fn(&str) -> Option<&'a str>) -> Result<Fault, String> {
    let field = |c: &str| get(c).ok_or_else(|| format!("{c}: missing field"));
    let num = |c: &str| -> Result<u64, String> {
        let s = field(c)?;
        s.parse()
            .map_err(|_| format!("{c}: '{s}' is not a non-negative integer"))
    };
    let fault_id = num("fault_id")?;
    let sample = field("sample")?;
    let sample = Samples::parse(sample)
        .ok_or_else(|| format!("sample: '{sample}' is not N, START..END or *"))?;
    let target = field("target")?;
    let target = Target::parse(target)
        .ok_or_else(|| format!("target: '{target}' is not neuron or weight"))?;
    let dtype = field("dtype")?;
    let dtype = NumFormat::parse(dtype).ok_or_else(|| {
        let names: Vec<&str> = NumFormat::ALL.iter().map(|f| f.name()).collect();
        format!("dtype: '{dtype}' is not one of {}", names.join(", "))
    })?;
    let model = parse_model(field("fault_model")?, field("value")?)?;
    let bits = parse_list::<u8>(field("bit")?).map_err(|e| format!("bit: {e}"))?;
    let coord = parse_list::<u32>(field("coord")?).map_err(|e| format!("coord: {e}"))?;
    super::check_bits(&model, dtype, &bits).map_err(|e| format!("bit: {e}"))?;
    let opt = |c: &str| get(c).filter(|s| !s.is_empty());
    let scope = match opt("scope") {
        Some(s) => Scope::parse(s)
            .ok_or_else(|| format!("scope: '{s}' is not transient, batch, epoch or campaign"))?,
        None => Scope::Transient,
    };
    let or = |c: &str, d: u64| if opt(c).is_some() { num(c) } else { Ok(d) };
    let sweep = or("sweep", 0)?;
    let node = or("node", 0)?;
    Ok(Fault {
        fault_id,
        injection: or("injection", fault_id)?,
        sample,
        target,
        node: u32::try_from(node).map_err(|_| format!("node: {node} is too large"))?,
        layer: field("layer")?.to_string(),
        tensor: field("tensor")?.to_string(),
        coord,
        model,
        dtype,
        bits,
        scope,
        sweep: u32::try_from(sweep).map_err(|_| format!("sweep: {sweep} is too large"))?,
        draw: or("draw", rng::splitmix64(&mut fault_id.clone()))?,
    })
}

fn parse_model(name: &str, value: &str) -> Result<FaultModel, String> {
    let none = value.is_empty() || value == "-";
    let float = |s: &str| {
        s.trim()
            .parse::<f32>()
            .map_err(|_| format!("value: '{s}' is not a number"))
    };
    let model = match name {
        "bit_flip" => FaultModel::BitFlip,
        "stuck_at_0" => FaultModel::StuckAt0,
        "stuck_at_1" => FaultModel::StuckAt1,
        "zero" => FaultModel::Zero,
        "constant" if !none => FaultModel::Constant(float(value)?),
        "random_value" if !none => {
            let inner = value.strip_prefix('[').and_then(|v| v.strip_suffix(']'));
            let (min, max) = inner
                .and_then(|v| v.split_once(','))
                .ok_or_else(|| format!("value: '{value}' is not [min,max]"))?;
            let (min, max) = (float(min)?, float(max)?);
            if min.is_nan() || max.is_nan() || min > max {
                return Err(format!("value: [{min},{max}] is empty (min > max)"));
            }
            FaultModel::RandomValue { min, max }
        }
        "constant" | "random_value" => return Err(format!("value: {name} needs a value")),
        _ => match name.strip_prefix("custom:") {
            Some(n) if !n.is_empty() => FaultModel::Custom(n.to_string()),
            _ => {
                return Err(format!(
                    "fault_model: '{name}' is not bit_flip, stuck_at_0, stuck_at_1, random_value, zero, constant or custom:NAME"
                ))
            }
        },
    };
    let takes_value = matches!(
        model,
        FaultModel::Constant(_) | FaultModel::RandomValue { .. }
    );
    if !takes_value && !none {
        return Err(format!("value: {name} takes no value (write '-')"));
    }
    Ok(model)
}

/// A comma-separated list; `-` or empty is the empty list.
fn parse_list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>, String> {
    if s.is_empty() || s == "-" {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| format!("'{}' is not a valid index", x.trim()))
        })
        .collect()
}
