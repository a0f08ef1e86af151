//! The five workloads of issue 4, shared by `benches/workloads.rs` and
//! `tests/baseline_agrees.rs`: the generated networks, their data, and the copy of a generated
//! network's weights into its hand-written baseline (the rest of this crate).
//!
//! Workloads (f32, one thread):
//! - xor: Linear(2,8) ReLU Linear(8,1), MSE, Adam lr 1e-2, batch 4: one training step.
//! - digits: Linear(64,32) ReLU Linear(32,10), cross-entropy, Adam lr 1e-3, batch 32: one step.
//! - mnist: Linear(784,128) ReLU Linear(128,10), cross-entropy, SGD lr 1e-2, batch 64: one step.
//! - infer: Linear(16,32) Tanh Linear(32,32) Tanh Linear(32,4): one single-sample forward.
//! - online: the infer network, MSE, SGD lr 1e-2, batch 1: one training step.
//!
//! And the conv workload (the digits conv network of `examples/data/digits_conv.rs`;
//! `conv.rs`):
//! - conv: Unflatten(1,8,8) Conv2d(1,16,3,p=1) ReLU Conv2d(16,16,3,p=1) ReLU MaxPool2d(2)
//!   Conv2d(16,32,3,p=1) ReLU MaxPool2d(2) Flatten Linear(128,10), cross-entropy, Adam lr 1e-3,
//!   batch 32: one training step (`conv`), and one single-sample forward (`conv_infer`).
//!
//! And the amp workloads (a sample of audio in, one out; `recurrent.rs`):
//! - amp_lstm_step: LSTM(1,16) Linear(16,1): one time step of one stream (`step`).
//! - amp_gru_step: GRU(1,16) Linear(16,1): one time step of one stream.
//! - amp_lstm_window: the LSTM model, MSE, Adam lr 1e-3, one window of truncated
//!   backpropagation through time, 64 steps of 8 streams (`train_sequence`).

use crate::conv::{CONV_BATCH, ConvBase};
use crate::recurrent::{GG, GruStep, H, LG, LstmParams, LstmStep, LstmWindow};
use crate::{Dense, Mlp2, Mlp3};
use nn_runtime::prelude::*;

network! {
    /// xor: the classic 2-8-1 network.
    pub struct XorNet { Linear(2, 8), ReLU, Linear(8, 1) }
}

network! {
    /// digits: 8x8 images, 10 classes.
    pub struct DigitsNet { Linear(64, 32), ReLU, Linear(32, 10) }
}

network! {
    /// mnist: 28x28 images, 10 classes.
    pub struct MnistNet { Linear(784, 128), ReLU, Linear(128, 10) }
}

network! {
    /// infer and online: a small tanh regressor.
    pub struct TanhNet { Linear(16, 32), Tanh, Linear(32, 32), Tanh, Linear(32, 4) }
}

network! {
    /// conv and conv_infer: the digits conv network of `examples/data/digits_conv.rs`.
    pub struct DigitsConv {
        Unflatten(1, 8, 8),
        Conv2d(1, 16, 3, padding = 1),
        ReLU,
        Conv2d(16, 16, 3, padding = 1),
        ReLU,
        MaxPool2d(2),
        Conv2d(16, 32, 3, padding = 1),
        ReLU,
        MaxPool2d(2),
        Flatten,
        Linear(128, 10),
    }
}

network! {
    /// amp_lstm_step, amp_lstm_window: an LSTM and a linear read-out, one sample a step.
    pub struct AmpLstm { LSTM(1, 16), Linear(16, 1) }
}

network! {
    /// amp_gru_step: the same with a GRU.
    pub struct AmpGru { GRU(1, 16), Linear(16, 1) }
}

/// The seed every generated network starts from.
pub const SEED: u64 = 1;

pub const XOR_LR: f32 = 1e-2;
pub const DIGITS_LR: f32 = 1e-3;
pub const MNIST_LR: f32 = 1e-2;
pub const ONLINE_LR: f32 = 1e-2;
pub const AMP_LR: f32 = 1e-3;
pub const CONV_LR: f32 = 1e-3;
/// Steps of the amp_lstm_window window, and its streams.
pub const AMP_WINDOW: usize = 64;
pub const AMP_BATCH: usize = 8;

/// Baseline of xor: Adam (2 slots per parameter), batch 4.
pub type XorBase = Mlp2<2, 8, 1, 4, 2>;
/// Baseline of digits: Adam, batch 32.
pub type DigitsBase = Mlp2<64, 32, 10, 32, 2>;
/// Baseline of mnist: SGD (no state), batch 64.
pub type MnistBase = Mlp2<784, 128, 10, 64, 0>;
/// Baseline of online: SGD, batch 1 (its `forward` is the infer baseline).
pub type TanhBase = Mlp3<16, 32, 32, 4, 1, 0>;

/// A reproducible stream of uniform floats: SplitMix64, the same stream as nn-testkit's, which
/// this crate cannot depend on (`cargo package --workspace` cannot resolve one `publish =
/// false` crate's dependency on another).
pub struct Stream(u64);

impl Stream {
    pub fn new(seed: u64) -> Self {
        Stream(seed)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        lo + (hi - lo) * (((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32)
    }

    /// Uniform below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.uniform(0.0, 1.0) * n as f32) as usize).min(n - 1)
    }

    /// A matrix of uniform entries.
    pub fn matrix<const R: usize, const C: usize>(
        &mut self,
        lo: f32,
        hi: f32,
    ) -> Box<SMatrix<f32, R, C>> {
        let mut m = Box::new(SMatrix::<f32, R, C>::zeros());
        for v in m.iter_mut() {
            *v = self.uniform(lo, hi);
        }
        m
    }

    /// One-hot targets of random labels, one column per sample.
    pub fn one_hot<const CLASSES: usize, const B: usize>(
        &mut self,
    ) -> Box<SMatrix<f32, CLASSES, B>> {
        let mut m = Box::new(SMatrix::<f32, CLASSES, B>::zeros());
        for b in 0..B {
            let label = self.below(CLASSES);
            m[(label, b)] = 1.0;
        }
        m
    }
}

/// The four XOR inputs, one column each, and their targets.
pub fn xor_data() -> (Box<SMatrix<f32, 2, 4>>, Box<SMatrix<f32, 1, 4>>) {
    let xs = SMatrix::<f32, 2, 4>::from_column_slice(&[0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    let ys = SMatrix::<f32, 1, 4>::from_row_slice(&[0.0, 1.0, 1.0, 0.0]);
    (Box::new(xs), Box::new(ys))
}

/// 32 digit-like images (pixels in [0, 1)) and one-hot labels.
pub fn digits_data() -> (Box<SMatrix<f32, 64, 32>>, Box<SMatrix<f32, 10, 32>>) {
    let mut s = Stream::new(2);
    (s.matrix(0.0, 1.0), s.one_hot())
}

/// 32 digit-like images for the conv workload and one-hot labels: pixels in [0, 1), a
/// different draw from [`digits_data`]'s.
pub fn conv_data() -> (
    Box<SMatrix<f32, 64, CONV_BATCH>>,
    Box<SMatrix<f32, 10, CONV_BATCH>>,
) {
    let mut s = Stream::new(6);
    (s.matrix(0.0, 1.0), s.one_hot())
}

/// 64 MNIST-like images (pixels in [0, 1)) and one-hot labels.
pub fn mnist_data() -> (Box<SMatrix<f32, 784, 64>>, Box<SMatrix<f32, 10, 64>>) {
    let mut s = Stream::new(3);
    (s.matrix(0.0, 1.0), s.one_hot())
}

/// One sample for infer and online: input in [-1, 1), target in [-1, 1).
pub fn tanh_data() -> (Box<SMatrix<f32, 16, 1>>, Box<SMatrix<f32, 4, 1>>) {
    let mut s = Stream::new(4);
    (s.matrix(-1.0, 1.0), s.matrix(-1.0, 1.0))
}

/// A batch as the baseline reads it: the same bytes (column `b` of the matrix is row `b`).
pub fn rows<const R: usize, const C: usize>(m: &SMatrix<f32, R, C>) -> &[[f32; R]; C] {
    &m.data.0
}

/// Copies a generated layer's weight and bias into a baseline layer.
pub fn copy_layer<const IN: usize, const OUT: usize>(
    from: &Linear<f32, IN, OUT>,
    to: &mut Dense<IN, OUT>,
) {
    for o in 0..OUT {
        for i in 0..IN {
            to.w[o][i] = from.weight[(o, i)];
        }
        to.b[o] = from.bias[o];
    }
}

/// The audio the amp workloads step through: `n` samples of a sum of three sines and a little
/// noise, in [-1, 1).
pub fn amp_signal(n: usize) -> Vec<f32> {
    let mut s = Stream::new(5);
    (0..n)
        .map(|t| {
            let t = t as f32 / 48_000.0;
            let tone = 0.5 * (std::f32::consts::TAU * 110.0 * t).sin()
                + 0.2 * (std::f32::consts::TAU * 330.0 * t).sin()
                + 0.1 * (std::f32::consts::TAU * 1234.0 * t).sin();
            tone + s.uniform(-0.1, 0.1)
        })
        .collect()
}

/// amp_lstm_window's window: the input, and as targets a saturated copy of it, step `t` of
/// stream `b` at `[t][b]` (stream `b` the signal from sample `b * AMP_WINDOW`).
#[allow(clippy::type_complexity)]
pub fn amp_window() -> (
    Box<[[f32; AMP_BATCH]; AMP_WINDOW]>,
    Box<[[f32; AMP_BATCH]; AMP_WINDOW]>,
) {
    let signal = amp_signal(AMP_BATCH * AMP_WINDOW + AMP_WINDOW);
    let mut xs = Box::new([[0.0; AMP_BATCH]; AMP_WINDOW]);
    let mut ys = xs.clone();
    for t in 0..AMP_WINDOW {
        for b in 0..AMP_BATCH {
            xs[t][b] = signal[b * AMP_WINDOW + t];
            ys[t][b] = (3.0 * xs[t][b]).tanh();
        }
    }
    (xs, ys)
}

/// The window as the generated `train_sequence` reads it: one `1 x B` matrix per step, the
/// same numbers.
pub fn amp_window_matrices(xs: &[[f32; AMP_BATCH]; AMP_WINDOW]) -> Vec<SMatrix<f32, 1, AMP_BATCH>> {
    xs.iter().map(|row| SMatrix::from_row_slice(row)).collect()
}

/// The LSTM model's weights in the baselines' layout: `W_hh` transposed, the input weight as
/// a column, the biases apart.
pub fn amp_lstm_params(net: &AmpLstm) -> LstmParams {
    let l = &net.l0.first;
    let mut p = LstmParams {
        wt: [[0.0; LG]; H],
        wx: [0.0; LG],
        bi: [0.0; LG],
        bh: [0.0; LG],
        ow: [0.0; H],
        ob: [net.l1.bias[0]],
    };
    for r in 0..LG {
        for k in 0..H {
            p.wt[k][r] = l.weight_hh[(r, k)];
        }
        p.wx[r] = l.weight_ih[(r, 0)];
        p.bi[r] = l.bias_ih[r];
        p.bh[r] = l.bias_hh[r];
    }
    for k in 0..H {
        p.ow[k] = net.l1.weight[(0, k)];
    }
    p
}

/// The inference baseline of the LSTM model, with the weights of `net`.
pub fn amp_lstm_base(net: &AmpLstm) -> Box<LstmStep> {
    let p = amp_lstm_params(net);
    let mut b = [0.0; LG];
    for r in 0..LG {
        b[r] = p.bi[r] + p.bh[r];
    }
    Box::new(LstmStep {
        wt: p.wt,
        wx: p.wx,
        b,
        ow: p.ow,
        ob: p.ob[0],
    })
}

/// The training baseline of the LSTM model, with the weights of `net`, a zero state and fresh
/// Adam moments.
pub fn amp_lstm_window_base(net: &AmpLstm) -> Box<LstmWindow<AMP_WINDOW, AMP_BATCH>> {
    LstmWindow::new(amp_lstm_params(net))
}

/// The inference baseline of the GRU model, with the weights of `net`.
pub fn amp_gru_base(net: &AmpGru) -> Box<GruStep> {
    let l = &net.l0.first;
    let mut base = Box::new(GruStep {
        wt: [[0.0; GG]; H],
        wx: [0.0; GG],
        bi: [0.0; GG],
        bh: [0.0; GG],
        ow: [0.0; H],
        ob: net.l1.bias[0],
    });
    for r in 0..GG {
        for k in 0..H {
            base.wt[k][r] = l.weight_hh[(r, k)];
        }
        base.wx[r] = l.weight_ih[(r, 0)];
        base.bi[r] = l.bias_ih[r];
        base.bh[r] = l.bias_hh[r];
    }
    for k in 0..H {
        base.ow[k] = net.l1.weight[(0, k)];
    }
    base
}

/// A baseline with the weights of `net` and fresh optimizer state.
pub fn xor_base(net: &XorNet) -> Box<XorBase> {
    let mut base = XorBase::zeroed();
    copy_layer(&net.l0, &mut base.l0);
    copy_layer(&net.l2, &mut base.l2);
    base
}

/// See [`xor_base`].
pub fn digits_base(net: &DigitsNet) -> Box<DigitsBase> {
    let mut base = DigitsBase::zeroed();
    copy_layer(&net.l0, &mut base.l0);
    copy_layer(&net.l2, &mut base.l2);
    base
}

/// See [`xor_base`].
pub fn mnist_base(net: &MnistNet) -> Box<MnistBase> {
    let mut base = MnistBase::zeroed();
    copy_layer(&net.l0, &mut base.l0);
    copy_layer(&net.l2, &mut base.l2);
    base
}

/// See [`xor_base`].
pub fn tanh_base(net: &TanhNet) -> Box<TanhBase> {
    let mut base = TanhBase::zeroed();
    copy_layer(&net.l0, &mut base.l0);
    copy_layer(&net.l2, &mut base.l2);
    copy_layer(&net.l4, &mut base.l4);
    base
}

/// Copies a generated convolution's weight (`COUT x CK`, column `(ci KH + kh) KW + kw`) and
/// bias into a baseline layer stored as `[out][in 9]`: torch's `[out, in, 3, 3]`, row-major.
pub fn copy_conv<const CING: usize, const CK: usize, const COUT: usize>(
    from: &nn_runtime::Conv2d<f32, COUT, CING, 3, 3, CK, true>,
    to: &mut Dense<CK, COUT>,
) {
    for o in 0..COUT {
        for c in 0..CK {
            to.w[o][c] = from.weight[(o, c)];
        }
        to.b[o] = from.bias[o];
    }
}

/// The conv baseline with the weights of `net` and fresh optimizer state.
pub fn conv_base(net: &DigitsConv) -> Box<ConvBase> {
    let mut base = ConvBase::zeroed();
    copy_conv(&net.l1, &mut base.c1);
    copy_conv(&net.l3, &mut base.c3);
    copy_conv(&net.l6, &mut base.c6);
    copy_layer(&net.l10, &mut base.l10);
    base
}
