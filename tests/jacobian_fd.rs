//! Input sensitivities checked by central finite differences, in `f64`: every entry of
//! `jacobian(x)` against `(forward(x + h e_k)_i - forward(x - h e_k)_i) / 2h`, with the
//! tolerances of the parameter checks (`nn_testkit::gradcheck`); and `input_gradient(x, dy)`
//! and its batch form against `jacobian(x)^T dy`, to rounding.
//!
//! The networks cover the activation family, PReLU, Softmax and LogSoftmax, a residual block
//! and a nested network, a shaped network (Unflatten, Conv2d, pools, LayerNorm, Flatten), and
//! one with batch norms and dropout, differentiated in inference mode as `forward` runs.
//! Parameters and inputs are drawn away from zero-width kinks with probability one: ReLU and
//! max-pool ties lie at distances far above the step `H`.

use approx::relative_eq;
use nn_runtime::prelude::*;
use nn_testkit::gradcheck::{H, Report};
use nn_testkit::rng::SplitMix64;

network! {
    /// Smooth and kinked activations between Linear layers.
    struct Mlp: f64 {
        Linear(3, 6), Tanh, Linear(6, 5), GELU, Linear(5, 5), ELU(alpha = 0.5), Linear(5, 4),
        SiLU, Linear(4, 4), Sigmoid, Linear(4, 2)
    }
}

network! {
    /// PReLU with a slope per feature, then a softmax.
    struct Prelu: f64 { Linear(3, 4), PReLU(4), Linear(4, 3), Softmax(dim = 1) }
}

network! {
    /// A log-softmax head on a ReLU layer.
    struct LogSoft: f64 { Linear(4, 5), ReLU, Linear(5, 3), LogSoftmax(dim = 1) }
}

network! {
    /// The block nested below.
    struct Inner: f64 { Linear(4, 4), Tanh }
}

network! {
    /// A residual block and a nested network, with a named layer.
    struct Nest: f64 {
        Linear(3, 4), Residual(Linear(4, 4), ReLU, Linear(4, 4)), inner: Inner, Softplus,
        head: Linear(4, 2)
    }
}

network! {
    /// A small image network: convolutions, both pools, a LayerNorm over the last axis.
    struct Conv: f64 {
        Unflatten(1, 6, 6), Conv2d(1, 3, 3, padding = 1), Tanh, MaxPool2d(2), LayerNorm(3),
        Conv2d(3, 4, 2), ReLU, AvgPool2d(2), Flatten, Linear(4, 2)
    }
}

network! {
    /// Batch norms and dropout, whose sensitivities are those of inference, as `forward`'s:
    /// the running statistics' affine map, and the identity.
    struct Bn: f64 {
        Unflatten(1, 6, 6), Conv2d(1, 3, 3, padding = 1), BatchNorm2d(3), ReLU, MaxPool2d(2),
        Flatten, Linear(27, 8), BatchNorm1d(8), Dropout(0.25), Tanh, Linear(8, 2)
    }
}

/// Parameters uniform in `+-0.5` (PReLU's slopes too), drawn from `seed`; batch norms'
/// running variances in `[0.5, 1.5]`.
fn draw<N: Network<Scalar = f64>>(seed: u64) -> N {
    let mut net = N::zeros();
    let mut rng = SplitMix64::new(seed);
    net.visit_mut("", &mut |name, _, data| {
        let (lo, hi) = if name.ends_with("running_var") {
            (0.5, 1.5)
        } else {
            (-0.5, 0.5)
        };
        for v in data.iter_mut() {
            *v = rng.uniform(lo, hi);
        }
    });
    net
}

/// Checks `jacobian` of a network at `x` against central differences of `forward`, and
/// `input_gradient` against `jacobian^T dy` for a drawn `dy`.
fn check<const IN: usize, const OUT: usize>(
    name: &str,
    forward: impl Fn(&SVector<f64, IN>) -> SVector<f64, OUT>,
    jacobian: impl Fn(&SVector<f64, IN>) -> SMatrix<f64, OUT, IN>,
    input_gradient: impl Fn(&SVector<f64, IN>, &SVector<f64, OUT>) -> SVector<f64, IN>,
    seed: u64,
) {
    let mut rng = SplitMix64::new(seed ^ 0x5eed);
    let x: SVector<f64, IN> = rng.matrix(-1.5, 1.5);
    let jac = jacobian(&x);
    let at = forward(&x);
    let mut report = Report::default();
    for k in 0..IN {
        let (mut up, mut down) = (x, x);
        up[k] += H;
        down[k] -= H;
        let (y_up, y_down) = (forward(&up), forward(&down));
        for i in 0..OUT {
            report.entry(
                format!("d out{i} / d in{k}"),
                jac[(i, k)],
                up[k],
                down[k],
                (y_up[i], y_down[i]),
                at[i],
            );
        }
    }
    report.assert(name, IN * OUT);

    let dy: SVector<f64, OUT> = rng.matrix(-1.0, 1.0);
    let ours = input_gradient(&x, &dy);
    let expected = jac.transpose() * dy;
    for k in 0..IN {
        assert!(
            relative_eq!(ours[k], expected[k], epsilon = 1e-14, max_relative = 1e-12),
            "{name}: input_gradient {k}: {} against J^T dy {}",
            ours[k],
            expected[k]
        );
    }
}

/// `check` for a network type, at a few seeds, and the batch form column by column.
macro_rules! check_network {
    ($net:ty, $test:ident) => {
        #[test]
        fn $test() {
            for seed in 0..3 {
                let net: $net = draw(seed);
                let name = format!("{} seed {seed}", stringify!($net));
                check(
                    &name,
                    |x| net.forward(x),
                    |x| net.jacobian(x),
                    |x, dy| net.input_gradient(x, dy),
                    seed,
                );
                let mut rng = SplitMix64::new(seed + 100);
                let xs: SMatrix<f64, { <$net>::IN }, 3> = rng.matrix(-1.5, 1.5);
                let dys: SMatrix<f64, { <$net>::OUT }, 3> = rng.matrix(-1.0, 1.0);
                let batch = net.input_gradient_batch(&xs, &dys);
                for b in 0..3 {
                    let one = net.input_gradient(&xs.column(b).into(), &dys.column(b).into());
                    assert!(
                        relative_eq!(
                            batch.column(b).into_owned(),
                            one,
                            epsilon = 1e-14,
                            max_relative = 1e-12
                        ),
                        "{name}: batch column {b}"
                    );
                }
            }
        }
    };
}

check_network!(Mlp, mlp_with_common_activations);
check_network!(Prelu, prelu_and_softmax);
check_network!(LogSoft, log_softmax);
check_network!(Nest, residual_and_nested);
check_network!(Conv, conv_pools_and_layer_norm);
check_network!(Bn, batch_norm_and_dropout_in_inference);

/// Frozen layers change nothing about the sensitivities: they are of `forward`.
#[test]
fn freezing_leaves_the_jacobian_alone() {
    let mut net: Mlp = draw(7);
    let x = SVector::<f64, 3>::new(0.3, -0.2, 0.9);
    let before = net.jacobian(&x);
    for layer in [0, 2, 4] {
        net.freeze(layer).expect("a layer of Mlp");
    }
    assert_eq!(net.jacobian(&x), before);
}
