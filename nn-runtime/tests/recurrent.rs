//! The recurrent blocks (`Gru`, `Lstm`, `Rnn`) against central finite differences, in `f64`,
//! over windows of several steps: every parameter, the input at every step and the window's
//! initial state, with one and two layers and without biases; and their names, pairing,
//! initialisation and zeros.

use nalgebra::SMatrix;
use nn_runtime::__private::{GruCache, LstmCache, RnnCache};
use nn_runtime::heap::zeroed;
use nn_runtime::init::Init;
use nn_runtime::tensors::Tensors;
use nn_runtime::{Gru, HiddenState, Lstm, LstmState, Rnn};

/// Steps in a window: enough for gradients to travel through several states.
const STEPS: usize = 9;
/// Streams in a batch: more than one, so a mix-up of columns shows.
const B: usize = 2;

/// What the checks need of a recurrent block, whichever kind.
trait Stack<const IN: usize, const H: usize>: Tensors<f64> + Clone {
    type State: Clone;
    type Cache;
    fn zeros() -> Self;
    fn reset(&mut self, init: &mut Init);
    fn state_zeros() -> Self::State;
    fn cache_zeros() -> Self::Cache;
    fn step(
        &self,
        x: &SMatrix<f64, IN, B>,
        s: &mut Self::State,
        c: &mut Self::Cache,
    ) -> SMatrix<f64, H, B>;
    fn step_only(&self, x: &SMatrix<f64, IN, B>, s: &mut Self::State) -> SMatrix<f64, H, B>;
    fn step_backward(
        &self,
        c: &Self::Cache,
        dh: &SMatrix<f64, H, B>,
        carry: &mut Self::State,
        grads: &mut Self,
    ) -> SMatrix<f64, IN, B>;
    /// The state's matrices, hidden states first (then the LSTM's cells).
    fn state_parts(s: &mut Self::State) -> Vec<&mut SMatrix<f64, H, B>>;
    /// Every bias entry of every layer, whether named or not.
    fn biases(&self) -> Vec<f64>;
}

macro_rules! stack_impl {
    ($ty:ty, $state:ident, $cache:ident, $in:literal, $h:literal, $gh:literal, $l:literal, $rest:literal, [$($part:ident),*]) => {
        impl Stack<$in, $h> for $ty {
            type State = $state<f64, $h, $l, B>;
            type Cache = $cache<f64, $in, $h, $gh, $l, $rest, B>;
            fn zeros() -> Self {
                <$ty>::zeros()
            }
            fn reset(&mut self, init: &mut Init) {
                <$ty>::reset(self, init)
            }
            fn state_zeros() -> Self::State {
                $state::zeros()
            }
            fn cache_zeros() -> Self::Cache {
                $cache::zeros()
            }
            fn step(
                &self,
                x: &SMatrix<f64, $in, B>,
                s: &mut Self::State,
                c: &mut Self::Cache,
            ) -> SMatrix<f64, $h, B> {
                <$ty>::step(self, x, s, c)
            }
            fn step_only(&self, x: &SMatrix<f64, $in, B>, s: &mut Self::State) -> SMatrix<f64, $h, B> {
                <$ty>::step_only(self, x, s)
            }
            fn step_backward(
                &self,
                c: &Self::Cache,
                dh: &SMatrix<f64, $h, B>,
                carry: &mut Self::State,
                grads: &mut Self,
            ) -> SMatrix<f64, $in, B> {
                <$ty>::step_backward(self, c, dh, carry, grads)
            }
            fn state_parts(s: &mut Self::State) -> Vec<&mut SMatrix<f64, $h, B>> {
                let mut parts = Vec::new();
                $(parts.extend(s.$part.iter_mut());)*
                parts
            }
            fn biases(&self) -> Vec<f64> {
                let mut all = Vec::new();
                all.extend(self.first.bias_ih.iter());
                all.extend(self.first.bias_hh.iter());
                for layer in &self.rest {
                    all.extend(layer.bias_ih.iter());
                    all.extend(layer.bias_hh.iter());
                }
                all
            }
        }
    };
}

type Gru1 = Gru<f64, 3, 4, 12, 1, 0, true>;
type Gru2 = Gru<f64, 3, 4, 12, 2, 1, true>;
type Gru2NoBias = Gru<f64, 2, 3, 9, 2, 1, false>;
type Lstm1 = Lstm<f64, 3, 4, 16, 1, 0, true>;
type Lstm2 = Lstm<f64, 3, 4, 16, 2, 1, true>;
type Lstm2NoBias = Lstm<f64, 2, 3, 12, 2, 1, false>;
type Tanh1 = Rnn<f64, 3, 4, 4, 1, 0, true, false>;
type Tanh2 = Rnn<f64, 3, 4, 4, 2, 1, true, false>;
type Tanh2NoBias = Rnn<f64, 2, 3, 3, 2, 1, false, false>;
type Relu1 = Rnn<f64, 3, 4, 4, 1, 0, true, true>;
type Relu2 = Rnn<f64, 3, 5, 5, 2, 1, true, true>;
type Relu1NoBias = Rnn<f64, 2, 3, 3, 1, 0, false, true>;

stack_impl!(Gru1, HiddenState, GruCache, 3, 4, 12, 1, 0, [h]);
stack_impl!(Gru2, HiddenState, GruCache, 3, 4, 12, 2, 1, [h]);
stack_impl!(Gru2NoBias, HiddenState, GruCache, 2, 3, 9, 2, 1, [h]);
stack_impl!(Lstm1, LstmState, LstmCache, 3, 4, 16, 1, 0, [h, c]);
stack_impl!(Lstm2, LstmState, LstmCache, 3, 4, 16, 2, 1, [h, c]);
stack_impl!(Lstm2NoBias, LstmState, LstmCache, 2, 3, 12, 2, 1, [h, c]);
stack_impl!(Tanh1, HiddenState, RnnCache, 3, 4, 4, 1, 0, [h]);
stack_impl!(Tanh2, HiddenState, RnnCache, 3, 4, 4, 2, 1, [h]);
stack_impl!(Tanh2NoBias, HiddenState, RnnCache, 2, 3, 3, 2, 1, [h]);
stack_impl!(Relu1, HiddenState, RnnCache, 3, 4, 4, 1, 0, [h]);
stack_impl!(Relu2, HiddenState, RnnCache, 3, 5, 5, 2, 1, [h]);
stack_impl!(Relu1NoBias, HiddenState, RnnCache, 2, 3, 3, 1, 0, [h]);

/// A deterministic matrix with entries in `[-scale, scale)`.
fn matrix<const R: usize, const C: usize>(salt: u32, scale: f64) -> SMatrix<f64, R, C> {
    SMatrix::from_fn(|r, c| {
        let i = (r * C + c) as u32 + salt.wrapping_mul(7919);
        let u = (i.wrapping_mul(2654435761).wrapping_add(salt) % 1000) as f64 / 500.0 - 1.0;
        u * scale
    })
}

/// Every parameter in `Tensors` order, flat.
fn flat<S: Tensors<f64>>(s: &S) -> Vec<f64> {
    let mut all = Vec::new();
    s.visit("", &mut |_, _, data| all.extend_from_slice(data));
    all
}

/// Adds `by` to the parameter at flat position `at`.
fn nudge<S: Tensors<f64>>(s: &mut S, at: usize, by: f64) {
    let mut seen = 0;
    s.visit_mut("", &mut |_, _, data| {
        if (seen..seen + data.len()).contains(&at) {
            data[at - seen] += by;
        }
        seen += data.len();
    });
}

/// The scalar loss `sum_t <w_t, y_t>` of a window, run with `step_only`.
fn loss<S: Stack<IN, H>, const IN: usize, const H: usize>(
    net: &S,
    xs: &[SMatrix<f64, IN, B>],
    ws: &[SMatrix<f64, H, B>],
    initial: &S::State,
) -> f64 {
    let mut state = initial.clone();
    xs.iter()
        .zip(ws)
        .map(|(x, w)| net.step_only(x, &mut state).dot(w))
        .sum()
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= 1e-7 + 1e-6 * want.abs()
}

/// BPTT through `step` and `step_backward` against central differences of [`loss`].
fn check_gradients<S: Stack<IN, H>, const IN: usize, const H: usize>(seed: u64) {
    let mut net = S::zeros();
    net.reset(&mut Init::new(seed));
    let xs: Vec<SMatrix<f64, IN, B>> = (0..STEPS).map(|t| matrix(10 + t as u32, 1.5)).collect();
    let ws: Vec<SMatrix<f64, H, B>> = (0..STEPS).map(|t| matrix(50 + t as u32, 1.0)).collect();
    let mut initial = S::state_zeros();
    for (k, part) in S::state_parts(&mut initial).into_iter().enumerate() {
        *part = matrix(90 + k as u32, 0.8);
    }

    // Forward with caches; `step` and `step_only` agree exactly, state and output.
    let mut state = initial.clone();
    let mut other = initial.clone();
    let mut caches: Vec<S::Cache> = (0..STEPS).map(|_| S::cache_zeros()).collect();
    for (x, cache) in xs.iter().zip(&mut caches) {
        let y = net.step(x, &mut state, cache);
        assert_eq!(y, net.step_only(x, &mut other));
    }
    let (mut a, mut b) = (state.clone(), other.clone());
    for (p, q) in S::state_parts(&mut a)
        .into_iter()
        .zip(S::state_parts(&mut b))
    {
        assert_eq!(p, q);
    }

    // Backward through time, the parameter gradients accumulated over the window.
    let mut grads = S::zeros();
    let mut carry = S::state_zeros();
    let mut dxs = [SMatrix::<f64, IN, B>::zeros(); STEPS];
    for t in (0..STEPS).rev() {
        dxs[t] = net.step_backward(&caches[t], &ws[t], &mut carry, &mut grads);
    }

    let eps = 1e-6;
    let analytic = flat(&grads);
    let params = flat(&net).len();
    assert_eq!(analytic.len(), params);
    let mut nonzero = 0;
    for (i, &got) in analytic.iter().enumerate() {
        let (mut plus, mut minus) = (net.clone(), net.clone());
        nudge(&mut plus, i, eps);
        nudge(&mut minus, i, -eps);
        let want =
            (loss(&plus, &xs, &ws, &initial) - loss(&minus, &xs, &ws, &initial)) / (2.0 * eps);
        assert!(close(got, want), "parameter {i}: {got} vs {want}");
        nonzero += usize::from(want.abs() > 1e-6);
    }
    // A third at least: some of relu's units are off for the whole window.
    assert!(
        nonzero * 3 > params,
        "only {nonzero} of {params} move the loss"
    );
    // Without biases their gradients are not even accumulated.
    let mut named_bias = false;
    net.visit("", &mut |name, _, _| named_bias |= name.contains("bias"));
    if !named_bias {
        assert!(grads.biases().iter().all(|&b| b == 0.0));
        assert!(net.biases().iter().all(|&b| b == 0.0));
    }

    for t in 0..STEPS {
        for i in 0..IN * B {
            let (mut plus, mut minus) = (xs.clone(), xs.clone());
            plus[t][i] += eps;
            minus[t][i] -= eps;
            let want = (loss(&net, &plus, &ws, &initial) - loss(&net, &minus, &ws, &initial))
                / (2.0 * eps);
            assert!(
                close(dxs[t][i], want),
                "x[{t}][{i}]: {} vs {want}",
                dxs[t][i]
            );
        }
    }

    let parts = S::state_parts(&mut carry).len();
    for k in 0..parts {
        for i in 0..H * B {
            let (mut plus, mut minus) = (initial.clone(), initial.clone());
            S::state_parts(&mut plus)[k][i] += eps;
            S::state_parts(&mut minus)[k][i] -= eps;
            let want = (loss(&net, &xs, &ws, &plus) - loss(&net, &xs, &ws, &minus)) / (2.0 * eps);
            let got = S::state_parts(&mut carry)[k][i];
            assert!(close(got, want), "state part {k} [{i}]: {got} vs {want}");
        }
    }
}

#[test]
fn gru_gradients_agree_with_finite_differences() {
    check_gradients::<Gru1, 3, 4>(1);
    check_gradients::<Gru2, 3, 4>(2);
    check_gradients::<Gru2NoBias, 2, 3>(3);
}

#[test]
fn lstm_gradients_agree_with_finite_differences() {
    check_gradients::<Lstm1, 3, 4>(4);
    check_gradients::<Lstm2, 3, 4>(5);
    check_gradients::<Lstm2NoBias, 2, 3>(6);
}

#[test]
fn rnn_tanh_gradients_agree_with_finite_differences() {
    check_gradients::<Tanh1, 3, 4>(7);
    check_gradients::<Tanh2, 3, 4>(8);
    check_gradients::<Tanh2NoBias, 2, 3>(9);
}

#[test]
fn rnn_relu_gradients_agree_with_finite_differences() {
    check_gradients::<Relu1, 3, 4>(10);
    check_gradients::<Relu2, 3, 5>(11);
    check_gradients::<Relu1NoBias, 2, 3>(12);
}

/// Names, shapes and order are torch's `state_dict`'s; data is the fields' own.
#[test]
fn tensors_are_named_as_torch_names_them() {
    let mut lstm = Lstm::<f32, 3, 4, 16, 2, 1, true>::zeros();
    lstm.rest[0].bias_hh[5] = 7.0;
    let mut seen = Vec::new();
    lstm.visit("rnn.", &mut |name, shape, data| {
        seen.push((name.to_string(), shape.to_vec(), data.len()))
    });
    let want = [
        ("rnn.weight_ih_l0", vec![16, 3], 48),
        ("rnn.weight_hh_l0", vec![16, 4], 64),
        ("rnn.bias_ih_l0", vec![16], 16),
        ("rnn.bias_hh_l0", vec![16], 16),
        ("rnn.weight_ih_l1", vec![16, 4], 64),
        ("rnn.weight_hh_l1", vec![16, 4], 64),
        ("rnn.bias_ih_l1", vec![16], 16),
        ("rnn.bias_hh_l1", vec![16], 16),
    ];
    let want: Vec<_> = want
        .into_iter()
        .map(|(n, s, l)| (n.to_string(), s, l))
        .collect();
    assert_eq!(seen, want);
    lstm.visit_mut("", &mut |name, _, data| {
        if name == "bias_hh_l1" {
            assert_eq!(data[5], 7.0);
            data[5] = 8.0;
        }
    });
    assert_eq!(lstm.rest[0].bias_hh[5], 8.0);

    let mut names = Vec::new();
    Gru::<f64, 2, 3, 9, 1, 0, false>::zeros().visit("", &mut |name, shape, _| {
        names.push((name.to_string(), shape.to_vec()))
    });
    assert_eq!(
        names,
        [
            ("weight_ih_l0".to_string(), vec![9, 2]),
            ("weight_hh_l0".to_string(), vec![9, 3]),
        ]
    );
    let mut count = 0;
    Rnn::<f32, 1, 2, 2, 3, 2, true, true>::zeros().visit("", &mut |_, _, _| count += 1);
    assert_eq!(count, Rnn::<f32, 1, 2, 2, 3, 2, true, true>::TENSORS);
}

/// `pair` gives `TENSORS` tensors, in `Tensors` order, `PARAMS` scalars in all, each beside
/// its gradient.
#[test]
fn pair_gives_every_tensor_beside_its_gradient() {
    fn check<S: Tensors<f32>>(
        mut block: S,
        grads: S,
        tensors: usize,
        params: usize,
        pair: impl for<'a> Fn(&'a mut S, &'a S, &mut [&'a mut [f32]], &mut [&'a [f32]], &mut usize),
    ) {
        let mut lens = Vec::new();
        block.visit("", &mut |_, _, data| lens.push(data.len()));
        let mut expected_grads = Vec::new();
        grads.visit("", &mut |_, _, data| expected_grads.push(data.to_vec()));
        let mut p: Vec<&mut [f32]> = (0..tensors + 1).map(|_| &mut [][..]).collect();
        let mut g: Vec<&[f32]> = vec![&[]; tensors + 1];
        let mut at = 1;
        pair(&mut block, &grads, &mut p, &mut g, &mut at);
        assert_eq!(at, tensors + 1);
        assert!(p[0].is_empty() && g[0].is_empty());
        let got: Vec<usize> = p[1..].iter().map(|s| s.len()).collect();
        assert_eq!(got, lens);
        assert_eq!(lens.iter().sum::<usize>(), params);
        for (g, want) in g[1..].iter().zip(&expected_grads) {
            assert_eq!(*g, &want[..]);
        }
    }
    macro_rules! case {
        ($ty:ty) => {{
            let mut grads = <$ty>::zeros();
            grads.reset(&mut Init::new(99));
            grads.first.bias_ih[0] = 1.0;
            check(
                <$ty>::zeros(),
                grads,
                <$ty>::TENSORS,
                <$ty>::PARAMS,
                |b, g, p, q, at| b.pair(g, p, q, at),
            );
        }};
    }
    case!(Gru<f32, 3, 4, 12, 1, 0, true>);
    case!(Gru<f32, 3, 4, 12, 3, 2, false>);
    case!(Lstm<f32, 1, 16, 64, 2, 1, true>);
    case!(Lstm<f32, 5, 2, 8, 1, 0, false>);
    case!(Rnn<f32, 3, 4, 4, 2, 1, true, false>);
    case!(Rnn<f32, 3, 4, 4, 2, 1, false, true>);
    assert_eq!(Lstm::<f32, 1, 16, 64, 2, 1, true>::TENSORS, 8);
    assert_eq!(Gru::<f32, 3, 4, 12, 3, 2, false>::TENSORS, 6);
    assert_eq!(
        Lstm::<f32, 1, 16, 64, 2, 1, true>::PARAMS,
        64 + 64 * 16 + 2 * 64 + 2 * 64 * 16 + 2 * 64
    );
}

/// torch's order of draws, its bound `1/sqrt(H)`, and no bias drawn or set without biases.
#[test]
fn reset_draws_in_torch_order_within_the_bound() {
    let mut gru = Gru::<f64, 3, 4, 12, 2, 1, true>::zeros();
    gru.reset(&mut Init::new(5));
    let mut init = Init::new(5);
    let bound = 0.5;
    let mut draw = || init.uniform::<f64>(bound);
    // Layer 0: weight_ih row-major, weight_hh row-major, bias_ih, bias_hh; then layer 1.
    for r in 0..12 {
        for c in 0..3 {
            assert_eq!(gru.first.weight_ih[(r, c)], draw());
        }
    }
    for r in 0..12 {
        for c in 0..4 {
            assert_eq!(gru.first.weight_hh[(r, c)], draw());
        }
    }
    for r in 0..12 {
        assert_eq!(gru.first.bias_ih[r], draw());
    }
    for r in 0..12 {
        assert_eq!(gru.first.bias_hh[r], draw());
    }
    for r in 0..12 {
        for c in 0..4 {
            assert_eq!(gru.rest[0].weight_ih[(r, c)], draw());
        }
    }
    let all = flat(&gru);
    assert!(all.iter().all(|p| p.abs() <= bound));
    assert!(all.iter().any(|p| p.abs() > 0.4));

    let mut lstm = Lstm::<f64, 2, 9, 36, 2, 1, false>::zeros();
    lstm.reset(&mut Init::new(1));
    assert!(
        flat(&lstm)
            .iter()
            .all(|p| p.abs() <= 1.0 / 3.0 && *p != 0.0)
    );
    for layer in std::iter::once(&lstm.first.bias_ih).chain([&lstm.first.bias_hh]) {
        assert!(layer.iter().all(|&b| b == 0.0));
    }
    assert!(lstm.rest[0].bias_ih.iter().all(|&b| b == 0.0));
    // The draws without biases are the weights' alone, back to back.
    let mut init = Init::new(1);
    for r in 0..36 {
        for c in 0..2 {
            assert_eq!(lstm.first.weight_ih[(r, c)], init.uniform::<f64>(1.0 / 3.0));
        }
    }
    for r in 0..36 {
        for c in 0..9 {
            assert_eq!(lstm.first.weight_hh[(r, c)], init.uniform::<f64>(1.0 / 3.0));
        }
    }
    assert_eq!(
        lstm.rest[0].weight_ih[(0, 0)],
        init.uniform::<f64>(1.0 / 3.0)
    );
}

#[test]
fn zeros_default_and_zeroed_agree() {
    type G = Gru<f32, 3, 4, 12, 2, 1, true>;
    type S = Lstm<f64, 3, 4, 16, 3, 2, false>;
    type R = Rnn<f32, 3, 4, 4, 1, 0, true, true>;
    assert_eq!(G::zeros(), G::default());
    assert_eq!(G::zeros(), zeroed::<G>());
    assert_eq!(S::zeros(), zeroed::<S>());
    assert_eq!(R::zeros(), zeroed::<R>());
    assert_eq!(HiddenState::<f32, 4, 2, 3>::zeros(), zeroed());
    assert_eq!(HiddenState::<f32, 4, 2, 3>::zeros(), Default::default());
    assert_eq!(LstmState::<f64, 4, 2, 3>::zeros(), zeroed());
    assert_eq!(GruCache::<f32, 3, 4, 12, 2, 1, 5>::zeros(), zeroed());
    assert_eq!(LstmCache::<f64, 3, 4, 16, 2, 1, 5>::zeros(), zeroed());
    assert_eq!(
        RnnCache::<f32, 3, 4, 4, 1, 0, 5>::zeros(),
        Default::default()
    );
}

/// In `f32`, with the fast sigmoid and tanh, `step` and `step_only` agree bit for bit and
/// stay close to the `f64` blocks' results.
#[test]
fn f32_steps_agree_and_follow_f64() {
    let mut lstm = Lstm::<f64, 1, 16, 64, 2, 1, true>::zeros();
    lstm.reset(&mut Init::new(3));
    let mut lstm32 = Lstm::<f32, 1, 16, 64, 2, 1, true>::zeros();
    lstm32.reset(&mut Init::new(3));
    let (mut s64, mut s32, mut t32) = (
        LstmState::<f64, 16, 2, 1>::zeros(),
        LstmState::<f32, 16, 2, 1>::zeros(),
        LstmState::<f32, 16, 2, 1>::zeros(),
    );
    let mut cache = LstmCache::zeros();
    for t in 0..200 {
        let x = (t as f64 * 0.1).sin();
        let y64 = lstm.step_only(&SMatrix::from([[x]]), &mut s64);
        let x32 = SMatrix::from([[x as f32]]);
        let y32 = lstm32.step(&x32, &mut s32, &mut cache);
        assert_eq!(y32, lstm32.step_only(&x32, &mut t32));
        for (a, b) in y64.iter().zip(y32.iter()) {
            assert!((a - *b as f64).abs() < 1e-5, "{a} vs {b}");
        }
    }
    assert_eq!(s32, t32);
}

/// The `f32` blocks take the SIMD kernels (constant-size at batch one, the general ones
/// above); the finite differences check the `f64` loops. Here the two precisions agree over a
/// window, forward and backward, gradients included.
#[test]
fn f32_kernels_agree_with_f64_loops() {
    macro_rules! case {
        ($t32:ty, $t64:ty, $state:ident, $cache:ident, $in:literal, $h:literal, $l:literal, $b:literal) => {{
            // A frame of its own per case: a debug build keeps every local of a function.
            fn case() {
                let (mut n32, mut n64) = (<$t32>::zeros(), <$t64>::zeros());
                n32.reset(&mut Init::new(4));
                n64.reset(&mut Init::new(4));
                let (mut g32, mut g64) = (<$t32>::zeros(), <$t64>::zeros());
                let (mut s32, mut s64) = (
                    $state::<f32, $h, $l, $b>::zeros(),
                    $state::<f64, $h, $l, $b>::zeros(),
                );
                let mut c32: Vec<_> = (0..STEPS).map(|_| $cache::zeros()).collect();
                let mut c64: Vec<_> = (0..STEPS).map(|_| $cache::zeros()).collect();
                let xs: Vec<SMatrix<f64, $in, $b>> =
                    (0..STEPS).map(|t| matrix(t as u32, 1.0)).collect();
                let ws: Vec<SMatrix<f64, $h, $b>> =
                    (0..STEPS).map(|t| matrix(20 + t as u32, 1.0)).collect();
                for t in 0..STEPS {
                    let y64 = n64.step(&xs[t], &mut s64, &mut c64[t]);
                    let y32 = n32.step(&xs[t].cast(), &mut s32, &mut c32[t]);
                    assert!((y64 - y32.cast::<f64>()).amax() < 1e-5);
                }
                let (mut k32, mut k64) = ($state::zeros(), $state::zeros());
                for t in (0..STEPS).rev() {
                    let d64 = n64.step_backward(&c64[t], &ws[t], &mut k64, &mut g64);
                    let d32 = n32.step_backward(&c32[t], &ws[t].cast(), &mut k32, &mut g32);
                    assert!((d64 - d32.cast::<f64>()).amax() < 1e-4);
                }
                let mut f32s = Vec::new();
                g32.visit("", &mut |_, _, data| {
                    f32s.extend(data.iter().map(|&v| v as f64))
                });
                let f64s = flat(&g64);
                assert_eq!(f32s.len(), f64s.len());
                for (a, b) in f32s.iter().zip(&f64s) {
                    assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
                }
                assert!((k64.h[0] - k32.h[0].cast::<f64>()).amax() < 1e-4);
            }
            case();
        }};
    }
    case!(Lstm<f32, 1, 16, 64, 1, 0, true>, Lstm<f64, 1, 16, 64, 1, 0, true>, LstmState, LstmCache, 1, 16, 1, 1);
    case!(Lstm<f32, 4, 16, 64, 2, 1, true>, Lstm<f64, 4, 16, 64, 2, 1, true>, LstmState, LstmCache, 4, 16, 2, 8);
    case!(Gru<f32, 3, 8, 24, 2, 1, true>, Gru<f64, 3, 8, 24, 2, 1, true>, HiddenState, GruCache, 3, 8, 2, 1);
    case!(Gru<f32, 3, 16, 48, 1, 0, false>, Gru<f64, 3, 16, 48, 1, 0, false>, HiddenState, GruCache, 3, 16, 1, 5);
    case!(Rnn<f32, 2, 16, 16, 2, 1, true, false>, Rnn<f64, 2, 16, 16, 2, 1, true, false>, HiddenState, RnnCache, 2, 16, 2, 1);
    case!(Rnn<f32, 2, 24, 24, 1, 0, true, true>, Rnn<f64, 2, 24, 24, 1, 0, true, true>, HiddenState, RnnCache, 2, 24, 1, 16);
}
