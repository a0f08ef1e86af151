//! A driver for instruction counts of the conv workloads under callgrind, free of the
//! machine's noise: `conv_driver WHICH N` runs `N` training steps (`gen`, `base`) or `N`
//! single-sample forwards (`gen-infer`, `base-infer`) of the network of the `conv` and
//! `conv_infer` groups. The cost of one is the difference of two runs' totals over the
//! difference of their `N`:
//!
//! ```sh
//! cargo build --release -p nn-benches --example conv_driver
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/conv_driver gen 10
//! ```

use nn_baseline as baseline;
use nn_baseline::workloads::*;
use nn_runtime::prelude::*;
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "gen".into());
    let n: usize = args.next().map_or(10, |n| n.parse().expect("N: a count"));
    let (xs, ys) = conv_data();
    let init = DigitsConv::seeded(SEED);
    let x: SVector<f32, 64> = xs.column(0).into_owned();
    match which.as_str() {
        "gen" => {
            let (mut net, mut opt) = (init.clone(), Adam::new(CONV_LR));
            for _ in 0..n {
                black_box(net.train_step(
                    black_box(&*xs),
                    black_box(&*ys),
                    &CrossEntropy,
                    &mut opt,
                ));
            }
        }
        "base" => {
            let mut base = conv_base(&init);
            let mut opt = baseline::Adam::new(CONV_LR);
            let (bx, by) = (rows(&xs), rows(&ys));
            for _ in 0..n {
                black_box(base.train_step::<baseline::CrossEntropy, _>(
                    black_box(bx),
                    black_box(by),
                    &mut opt,
                ));
            }
        }
        "gen-infer" => {
            for _ in 0..n {
                black_box(init.forward(black_box(&x)));
            }
        }
        "base-infer" => {
            let base = conv_base(&init);
            let bx = &rows(&x)[0];
            for _ in 0..n {
                black_box(base.forward(black_box(bx)));
            }
        }
        other => panic!("unknown workload {other}: gen, base, gen-infer or base-infer"),
    }
}
