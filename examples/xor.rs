//! The seed experiment: PyTorch's classic 2-8-1 ReLU network learning XOR with MSE and Adam
//! (lr 0.01) for 1000 full-batch epochs.
//!
//! Run it with `cargo run --release --example xor`.

use nn_runtime::prelude::*;

network! {
    /// The classic XOR network: 2 inputs, 8 hidden ReLU units, 1 output.
    pub struct Xor {
        Linear(2, 8),
        ReLU,
        Linear(8, 1),
    }
}

/// The seed this example trains from.
pub const SEED: u64 = 42;

/// The four XOR inputs, one column each, and their targets.
pub fn xor_data() -> (SMatrix<f32, 2, 4>, SMatrix<f32, 1, 4>) {
    let xs = SMatrix::<f32, 2, 4>::from_columns(&[
        SVector::from([0.0, 0.0]),
        SVector::from([0.0, 1.0]),
        SVector::from([1.0, 0.0]),
        SVector::from([1.0, 1.0]),
    ]);
    let ys = SMatrix::<f32, 1, 4>::from_row_slice(&[0.0, 1.0, 1.0, 0.0]);
    (xs, ys)
}

/// Trains a fresh network from `seed` for `epochs` epochs, calling `report(epoch, loss)` with the
/// loss before each update. Returns the network and its final loss.
pub fn train(seed: u64, epochs: usize, mut report: impl FnMut(usize, f32)) -> (Xor, f32) {
    let (xs, ys) = xor_data();
    let mut net = Xor::seeded(seed);
    let mut opt = Adam::new(0.01);
    for epoch in 0..epochs {
        let loss = net.train_step(&xs, &ys, &Mse, &mut opt);
        report(epoch, loss);
    }
    let final_loss = Mse.value(&net.forward_batch(&xs), &ys);
    (net, final_loss)
}

#[cfg_attr(test, allow(dead_code))]
fn main() {
    let (net, final_loss) = train(SEED, 1000, |epoch, loss| {
        if epoch % 100 == 0 {
            println!("epoch {epoch:>4}  loss {loss:.6}");
        }
    });
    println!("final loss {final_loss:.6}\n");
    println!("  x1   x2 | target | prediction");
    let (xs, ys) = xor_data();
    for (x, y) in xs.column_iter().zip(ys.iter()) {
        let prediction = net.forward(&x.into_owned());
        println!(
            "{:>4} {:>4} | {:>6} | {:>10.4}",
            x[0], x[1], y, prediction[0]
        );
    }
}

/// The example as a test: it trains, its network behaves as the public API promises.
#[cfg(test)]
mod tests {
    use super::*;

    /// Loss below which XOR counts as learned: every prediction within about 0.2 of its target.
    const LEARNED: f32 = 0.01;

    /// Every parameter tensor of `net`, flattened: layer 0's weight and bias, then layer 2's.
    fn tensors(net: &Xor) -> [&[f32]; 4] {
        [
            net.l0.weight.as_slice(),
            net.l0.bias.as_slice(),
            net.l2.weight.as_slice(),
            net.l2.bias.as_slice(),
        ]
    }

    /// Every parameter of `net`, layer 0's weight and bias, then layer 2's.
    fn params(net: &Xor) -> Vec<f32> {
        tensors(net).concat()
    }

    #[test]
    fn example_seed_learns_xor() {
        let mut losses = Vec::new();
        let (net, final_loss) = train(SEED, 1000, |epoch, loss| losses.push((epoch, loss)));
        println!("seed {SEED}: final loss after 1000 Adam steps {final_loss}");
        assert_eq!(losses.len(), 1000);
        assert!(losses.iter().enumerate().all(|(i, &(epoch, _))| i == epoch));
        assert!(
            final_loss < LEARNED,
            "seed {SEED}: final loss {final_loss} after 1000 steps, expected < {LEARNED}"
        );
        // The final loss is the loss of the trained network, as `train` documents.
        let (xs, ys) = xor_data();
        assert_eq!(final_loss, Mse.value(&net.forward_batch(&xs), &ys));
        for (x, y) in xs.column_iter().zip(ys.iter()) {
            let prediction = net.forward(&x.into_owned())[0];
            assert!(
                (prediction - y).abs() < 0.25,
                "input {x:?}: predicted {prediction}, target {y}"
            );
        }
    }

    #[test]
    fn most_seeds_learn_xor() {
        let finals: Vec<(u64, f32)> = (0..20)
            .map(|seed| (seed, train(seed, 1000, |_, _| {}).1))
            .collect();
        let learned = finals.iter().filter(|(_, loss)| *loss < LEARNED).count();
        println!("{learned} of 20 seeds reach loss < {LEARNED} after 1000 Adam(0.01) steps");
        for (seed, loss) in &finals {
            println!("  seed {seed:>2}: final loss {loss:.3e}");
        }
        assert!(
            learned >= 15,
            "only {learned} of 20 seeds learned XOR: {finals:?}"
        );
    }

    #[test]
    fn forward_agrees_with_forward_batch() {
        let (net, _) = train(SEED, 1000, |_, _| {});
        let (xs, _) = xor_data();
        let batch = net.forward_batch(&xs);
        for (b, x) in xs.column_iter().enumerate() {
            let single = net.forward(&x.into_owned());
            assert_eq!(single, batch.column(b).into_owned(), "sample {b}");
        }
        // Also for a batch of other sizes, the columns in another order, and an untrained network.
        for net in [net, Xor::seeded(7)] {
            let xs = SMatrix::<f32, 2, 3>::from_columns(&[
                SVector::from([0.5, -1.5]),
                SVector::from([1.0, 1.0]),
                SVector::from([-0.25, 2.0]),
            ]);
            let batch = net.forward_batch(&xs);
            for (b, x) in xs.column_iter().enumerate() {
                assert_eq!(net.forward(&x.into_owned()), batch.column(b).into_owned());
            }
            let one = net.forward_batch(&SMatrix::<f32, 2, 1>::from([[0.5, -1.5]]));
            assert_eq!(one, net.forward(&SVector::from([0.5, -1.5])));
        }
    }

    #[test]
    fn seeded_is_reproducible_and_within_pytorch_bounds() {
        for seed in 0..20 {
            assert_eq!(Xor::seeded(seed), Xor::seeded(seed), "seed {seed}");
        }
        let nets: Vec<Xor> = (0..20).map(Xor::seeded).collect();
        for (i, a) in nets.iter().enumerate() {
            for b in &nets[i + 1..] {
                // Not only the nets, but every tensor differs between seeds.
                for (ta, tb) in tensors(a).iter().zip(tensors(b)) {
                    assert_ne!(*ta, tb);
                }
            }
        }

        // nn.Linear's default init: weight and bias uniform in +-1/sqrt(in_features). The values are
        // drawn in f64 and rounded to f32, which is monotonic, so the bound rounded to f32 holds.
        let bound0 = (1.0 / 2f64.sqrt()) as f32;
        let bound2 = (1.0 / 8f64.sqrt()) as f32;
        let mut largest = [0f32; 4];
        for seed in 0..100 {
            let net = Xor::seeded(seed);
            for (t, (values, bound)) in tensors(&net)
                .into_iter()
                .zip([bound0, bound0, bound2, bound2])
                .enumerate()
            {
                for &v in values {
                    assert!(
                        v.abs() <= bound,
                        "seed {seed}, tensor {t}: {v} beyond +-{bound}"
                    );
                    largest[t] = largest[t].max(v.abs());
                }
            }
            // No two parameters of one network are equal: each is its own draw.
            let mut all = params(&net);
            all.sort_by(f32::total_cmp);
            assert!(all.windows(2).all(|w| w[0] != w[1]), "seed {seed}");
        }
        // Over 100 seeds the draws fill their range, so the bound is the right one, not a smaller
        // one: each tensor comes within 10% of it.
        for (t, bound) in [bound0, bound0, bound2, bound2].into_iter().enumerate() {
            assert!(
                largest[t] > 0.9 * bound,
                "tensor {t}: largest |value| {} of +-{bound}",
                largest[t]
            );
        }
    }

    #[test]
    fn zeros_and_consts() {
        let net = Xor::zeros();
        assert!(params(&net).iter().all(|&v| v == 0.0));
        assert_eq!(params(&net).len(), Xor::PARAMS);
        assert_eq!(params(&Xor::seeded(0)).len(), Xor::PARAMS);
        assert_eq!(Xor::IN, 2);
        assert_eq!(Xor::OUT, 1);
        assert_eq!(Xor::PARAMS, 33);
        assert_eq!(
            net.forward(&SVector::from([1.0, 0.0])),
            SVector::from([0.0])
        );
    }

    #[test]
    fn train_step_returns_the_loss_before_the_update() {
        let (xs, ys) = xor_data();
        let mut net = Xor::seeded(SEED);
        let mut opt = Adam::new(0.01);
        for step in 0..5 {
            let before = net.clone();
            let (expected, _) = net.gradients(&xs, &ys, &Mse);
            assert_eq!(expected, Mse.value(&net.forward_batch(&xs), &ys));
            let returned = net.train_step(&xs, &ys, &Mse, &mut opt);
            assert_eq!(returned, expected, "step {step}");
            assert_ne!(net, before, "step {step}: train_step did not update");
            let (after, _) = net.gradients(&xs, &ys, &Mse);
            assert_ne!(
                returned, after,
                "step {step}: returned the loss after the update"
            );
        }
    }

    /// An optimizer that records what `train_step` hands it and changes nothing.
    #[derive(Default)]
    struct Recorder {
        params: Vec<Vec<f32>>,
        grads: Vec<Vec<f32>>,
    }

    impl Optimizer<f32> for Recorder {
        fn step(&mut self, params: &mut [&mut [f32]], grads: &[&[f32]]) {
            self.params = params.iter().map(|p| p.to_vec()).collect();
            self.grads = grads.iter().map(|g| g.to_vec()).collect();
        }

        fn lr(&self) -> f32 {
            0.0
        }

        fn set_lr(&mut self, _: f32) {}
    }

    #[test]
    fn train_step_hands_each_parameter_its_own_gradient() {
        let (xs, ys) = xor_data();
        let net = Xor::seeded(SEED);
        let (_, grads) = net.gradients(&xs, &ys, &Mse);
        let mut stepped = net.clone();
        let mut recorder = Recorder::default();
        stepped.train_step(&xs, &ys, &Mse, &mut recorder);
        assert_eq!(
            stepped, net,
            "an optimizer that changes nothing changed the network"
        );
        let expected_params: Vec<Vec<f32>> = tensors(&net).iter().map(|t| t.to_vec()).collect();
        let expected_grads: Vec<Vec<f32>> = [
            grads.l0.weight.as_slice(),
            grads.l0.bias.as_slice(),
            grads.l2.weight.as_slice(),
            grads.l2.bias.as_slice(),
        ]
        .iter()
        .map(|t| t.to_vec())
        .collect();
        assert_eq!(recorder.params, expected_params);
        assert_eq!(recorder.grads, expected_grads);
    }
}
