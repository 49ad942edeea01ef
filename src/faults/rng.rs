//! The portable random stream behind fault generation. ChaCha8 (rand_chacha)
//! seeded from a splitmix64 expansion of the campaign seed, one stream per
//! sweep point; integer ranges use Lemire's unbiased multiply-and-reject and
//! transcendental functions come from `libm`, so the same seed gives the same
//! fault list on any machine, thread count and batch size.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A deterministic random stream.
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// Stream `stream` of the generator seeded with `seed`.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut state = seed;
        let mut key = [0u8; 32];
        for chunk in key.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(stream);
        Stream(rng)
    }

    /// 64 random bits.
    pub fn word(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n`; `n` must be positive (0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.word()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.word()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.word() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Index into cumulative weights `cum` (strictly increasing totals):
    /// index i with probability `(cum[i] - cum[i-1]) / cum.last()`.
    pub fn weighted(&mut self, cum: &[u64]) -> usize {
        let total = cum.last().copied().unwrap_or(0);
        let r = self.below(total);
        cum.partition_point(|&c| c <= r)
    }

    /// `k` distinct items of `set`, in the order drawn (partial Fisher-Yates).
    pub fn choose<T: Copy>(&mut self, set: &[T], k: usize) -> Vec<T> {
        let mut v = set.to_vec();
        let k = k.min(v.len());
        for i in 0..k {
            let j = i + self.below((v.len() - i) as u64) as usize;
            v.swap(i, j);
        }
        v.truncate(k);
        v
    }

    /// Poisson(lambda) conditioned on k >= 1, by inversion (lambda <= 100).
    pub fn poisson_nonzero(&mut self, lambda: f64) -> u64 {
        let u = self.unit() * -libm::expm1(-lambda);
        let mut p = libm::exp(-lambda) * lambda;
        let (mut k, mut cum) = (1u64, p);
        while u > cum && k < 10_000 {
            k += 1;
            p *= lambda / k as f64;
            cum += p;
        }
        k
    }

    /// Positions in `0..n` each chosen independently with probability `p`,
    /// conditioned on at least one (truncated geometric first gap, then
    /// geometric gaps). Sorted ascending.
    pub fn bernoulli_positions(&mut self, n: u64, p: f64) -> Vec<u64> {
        if p >= 1.0 {
            return (0..n).collect();
        }
        let ln_q = libm::log1p(-p);
        let none = libm::exp(n as f64 * ln_q);
        let first = libm::floor(libm::log1p(-self.unit() * (1.0 - none)) / ln_q);
        let mut out = vec![(first as u64).min(n - 1)];
        loop {
            let gap = libm::floor(libm::log1p(-self.unit()) / ln_q);
            let next = out[out.len() - 1]
                .saturating_add(1)
                .saturating_add(gap as u64);
            if next >= n {
                return out;
            }
            out.push(next);
        }
    }
}

/// One step of splitmix64 (the seed expander of Vigna's xoshiro family).
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
