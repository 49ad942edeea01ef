use std::time::Instant;
use tch::{Device, Kind, Tensor};
fn main() {
    tch::set_num_threads(1);
    let opts = (Kind::Float, Device::Cpu);
    for (c, hw, s) in [
        (32i64, 112i64, 1i64),
        (144, 56, 1),
        (384, 14, 1),
        (960, 7, 1),
    ] {
        let w = Tensor::randn([c, 1, 3, 3], opts);
        let b = Tensor::randn([c], opts);
        let mut line = format!("c{c} {hw}x{hw} s{s}:");
        for n in [1i64, 2, 4, 8, 12, 16, 24, 32] {
            let x = Tensor::randn([n, c, hw, hw], opts);
            let reps = (20_000_000 / (n * c * hw * hw)).max(3);
            let mut best = f64::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                for _ in 0..reps {
                    let _ = x.convolution(&w, Some(&b), [s; 2], [1, 1], [1, 1], false, [0, 0], c);
                }
                best = best.min(t.elapsed().as_secs_f64() / reps as f64 / n as f64);
            }
            line += &format!(" n{n} {:.0}", best * 1e6);
        }
        println!("{line}  (us per sample)");
    }
}
