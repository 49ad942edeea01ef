use tch::{Device, Kind, Tensor};
fn main() {
    tch::set_num_threads(1);
    let opts = (Kind::Float, Device::Cpu);
    for (c, hw, n) in [
        (32i64, 112i64, 1i64),
        (144, 56, 1),
        (144, 56, 16),
        (384, 14, 4),
        (384, 14, 32),
    ] {
        let w = Tensor::randn([c, 1, 3, 3], opts);
        let b = Tensor::randn([c], opts);
        let x = Tensor::randn([n, c, hw, hw], opts);
        eprintln!("=== c{c} {hw} n{n}");
        for _ in 0..2 {
            let _ = x.convolution(&w, Some(&b), [1; 2], [1, 1], [1, 1], false, [0, 0], c);
        }
    }
}
