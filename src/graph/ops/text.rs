//! TfIdfVectorizer: n-gram counts of integer token sequences.
//! Spec: <https://onnx.ai/onnx/operators/onnx__TfIdfVectorizer.html>.

use std::collections::HashMap;

use tch::{Kind, Tensor};

use super::{fail, input, one, to_i64s, Inputs, KResult, OpDef};
use crate::graph::{Node, Op};

pub const OPS: &[OpDef] = &[OpDef {
    op: Op::TfIdfVectorizer,
    attrs: &[
        "max_gram_length",
        "min_gram_length",
        "max_skip_count",
        "mode",
        "ngram_counts",
        "ngram_indexes",
        "pool_int64s",
        "pool_strings",
        "weights",
    ],
    kernel: tfidf_vectorizer,
}];

/// The pool's n-grams of lengths `min..=max`, each with its output column:
/// `ngram_counts[n - 1]` is where the n-grams start in `pool`, and the
/// n-grams of all lengths are numbered in pool order for `ngram_indexes`.
fn pool(node: &Node, min: i64, max: i64) -> KResult<HashMap<Vec<i64>, usize>> {
    if node.attrs.has("pool_strings") {
        return fail("pool_strings is not supported (faultsweep holds no strings)");
    }
    let pool = node.attrs.ints("pool_int64s")?.unwrap_or_default();
    let counts = node.attrs.ints("ngram_counts")?.unwrap_or_default();
    let columns = node.attrs.ints("ngram_indexes")?.unwrap_or_default();
    let mut grams = HashMap::new();
    let mut id = 0usize;
    for (i, &start) in counts.iter().enumerate() {
        let end = counts.get(i + 1).copied().unwrap_or(pool.len() as i64);
        let n = i as i64 + 1;
        if start < 0 || end < start || end > pool.len() as i64 || (end - start) % n != 0 {
            return fail(format!(
                "ngram_counts {counts:?} do not split a pool of {}",
                pool.len()
            ));
        }
        for gram in pool[start as usize..end as usize].chunks(n as usize) {
            let Some(&column) = columns.get(id) else {
                return fail(format!(
                    "ngram_indexes {columns:?} number fewer n-grams than the pool holds"
                ));
            };
            if (min..=max).contains(&n) {
                grams.insert(gram.to_vec(), column as usize);
            }
            id += 1;
        }
    }
    Ok(grams)
}

/// TfIdfVectorizer: per row of X (`[C]` or `[B, C]`), how often each pool
/// n-gram of length `min_gram_length` to `max_gram_length` occurs, its items
/// `d` apart for each `d` up to `max_skip_count + 1` (unigrams once); then
/// TF (the counts), IDF (the weight, or 1, where the count is not 0) or
/// TFIDF (count times weight).
fn tfidf_vectorizer(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let (min, max) = (
        node.attrs.int("min_gram_length", 0)?,
        node.attrs.int("max_gram_length", 0)?,
    );
    let skips = node.attrs.int("max_skip_count", 0)?;
    if min < 1
        || max < min
        || skips < 0
        || x.dim() > 2
        || !matches!(x.kind(), Kind::Int | Kind::Int64)
    {
        return fail(format!(
            "gram lengths {min}..{max}, max_skip_count {skips} and X {:?} of {:?}: lengths from 1, X of int32 or int64, rank 1 or 2",
            x.size(),
            x.kind()
        ));
    }
    let grams = pool(node, min, max)?;
    let columns = node.attrs.ints("ngram_indexes")?.unwrap_or_default();
    let width = columns.iter().copied().max().unwrap_or(-1) + 1;
    let values = to_i64s(x)?;
    let (rows, row_len) = match x.size()[..] {
        [b, c] => (b as usize, c as usize),
        _ => (1, values.len()),
    };
    let mut counts = vec![0f32; rows * width.max(0) as usize];
    for (r, row) in values.chunks(row_len.max(1)).enumerate().take(rows) {
        let out = &mut counts[r * width as usize..][..width as usize];
        let mut first = min;
        for d in 1..=(skips as usize + 1) {
            for s in 0..row.len() {
                for n in first as usize..=max as usize {
                    if s + (n - 1) * d >= row.len() {
                        break;
                    }
                    let gram: Vec<i64> = (0..n).map(|k| row[s + k * d]).collect();
                    if let Some(&c) = grams.get(&gram) {
                        out[c] += 1.0;
                    }
                }
            }
            // Unigrams are counted in the first pass only.
            if first == 1 {
                first = 2;
                if first > max {
                    break;
                }
            }
        }
    }
    let weights = node.attrs.floats("weights")?.unwrap_or_default();
    let weight = |i: usize| -> f32 {
        weights
            .get(i % width.max(1) as usize)
            .copied()
            .unwrap_or(1.0)
    };
    let y: Vec<f32> = match node.attrs.string("mode", "")?.as_str() {
        "TF" => counts,
        "IDF" => (counts.iter().enumerate())
            .map(|(i, &c)| if c > 0.0 { weight(i) } else { 0.0 })
            .collect(),
        "TFIDF" => (counts.iter().enumerate())
            .map(|(i, &c)| c * weight(i))
            .collect(),
        other => return fail(format!("mode '{other}' is not TF, IDF or TFIDF")),
    };
    let shape: Vec<i64> = if x.dim() == 2 {
        vec![rows as i64, width]
    } else {
        vec![width]
    };
    one(Tensor::from_slice(&y).f_reshape(shape.as_slice())?)
}
