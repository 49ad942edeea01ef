//! Step 7, report: per-injection rows streamed to CSV (every CSV through
//! the `csv` crate: [`CsvSink`], [`CsvTable`]; files written atomically by
//! [`crate::output`]); summaries of the outcome rates per layer, bit (per number
//! format), op type, number format and overall, each with a Wilson interval
//! clustered by injection ([`stats`], `summary`); accuracy under faults
//! ([`accuracy`]), paired comparisons of hardened models ([`compare`]), the
//! convergence curve ([`cma`]), FIT derating ([`fit`]) and the task's
//! measures ([`measures`]); the heatmaps ([`heatmap`]).

pub mod accuracy;
pub mod cma;
pub mod compare;
pub mod fit;
pub mod heatmap;
pub mod measures;
pub mod stats;
mod summary;
mod table;

pub use stats::{wilson, Confidence, Counts, Event, Group, Rate};
pub use summary::{Grouping, Key, Settings, Summary};
pub use table::{CsvLines, CsvSink, CsvTable};
