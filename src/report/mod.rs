//! Step 7, report: per-injection rows streamed to CSV (every CSV through
//! the `csv` crate: [`CsvSink`], [`CsvTable`]; files written atomically by
//! [`crate::output`]); summaries of the outcome rates per layer, bit (per number
//! format), op type, number format and overall, each with a 95% Wilson
//! interval clustered by injection ([`stats`], `summary`); the heatmaps
//! ([`heatmap`]).

pub mod heatmap;
pub mod stats;
mod summary;
mod table;

pub use stats::{wilson, Counts, Group, Rate};
pub use summary::{Grouping, Key, Summary};
pub use table::{CsvSink, CsvTable};
