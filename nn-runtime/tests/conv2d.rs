//! The shaped convolutions (`Conv2d`, `Conv1d`) and the pools against direct, naive `f64`
//! references written from torch's definitions: strides, padding, dilation, groups, no bias,
//! rectangular kernels; their gradients against central finite differences in `f64`; and
//! their tensors' names and shapes, parameter pairs, and initialisation.

use nalgebra::SMatrix;
use nn_runtime::init::Init;
use nn_runtime::tensors::Tensors;
use nn_runtime::{Conv1d, Conv2d};

/// A convolution's geometry, for the references (`KH = 1`, `HI = HO = 1` for a 1-D one).
#[derive(Clone, Copy, Debug)]
struct Geo {
    cin: usize,
    cout: usize,
    g: usize,
    hi: usize,
    wi: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    dh: usize,
    dw: usize,
}

/// Torch's convolution of one sample, summed term by term: `y[o, ho, wo] = b[o] + sum over
/// the group's input channels and the kernel of w[o, ci, kh, kw] x[g CING + ci, h, w]` with
/// `h = ho SH + kh DH - PH`, `w = wo SW + kw DW - PW`, zero outside the input.
fn conv_ref(
    geo: Geo,
    w: &dyn Fn(usize, usize, usize, usize) -> f64,
    b: &[f64],
    x: &[f64],
) -> Vec<f64> {
    let (cing, coutg) = (geo.cin / geo.g, geo.cout / geo.g);
    let mut y = vec![0.0; geo.cout * geo.ho * geo.wo];
    for o in 0..geo.cout {
        let group = o / coutg;
        for ho in 0..geo.ho {
            for wo in 0..geo.wo {
                let mut s = b[o];
                for ci in 0..cing {
                    for kh in 0..geo.kh {
                        for kw in 0..geo.kw {
                            let h = (ho * geo.sh + kh * geo.dh) as isize - geo.ph as isize;
                            let v = (wo * geo.sw + kw * geo.dw) as isize - geo.pw as isize;
                            if h < 0 || v < 0 || h >= geo.hi as isize || v >= geo.wi as isize {
                                continue;
                            }
                            let c = group * cing + ci;
                            let at = c * geo.hi * geo.wi + h as usize * geo.wi + v as usize;
                            s += w(o, ci, kh, kw) * x[at];
                        }
                    }
                }
                y[o * geo.ho * geo.wo + ho * geo.wo + wo] = s;
            }
        }
    }
    y
}

/// A deterministic value in `[-1, 1)`, distinct for distinct `i` below 1000 (given `salt`).
fn value(i: usize, salt: usize) -> f64 {
    ((i * 7919 + salt * 104_729) % 1000) as f64 / 500.0 - 1.0
}

/// `assert` that `got` is within `tol` (relative to 1 + |want|) of `want`.
fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * (1.0 + want.abs()),
        "{what}: got {got}, want {want}"
    );
}

/// A `Conv2d` block with deterministic parameters.
fn conv2d<
    T: nn_runtime::Real,
    const COUT: usize,
    const CING: usize,
    const KH: usize,
    const KW: usize,
    const CK: usize,
    const BIAS: bool,
>() -> Conv2d<T, COUT, CING, KH, KW, CK, BIAS> {
    let mut c = Conv2d::zeros();
    c.weight = SMatrix::from_fn(|r, k| T::cast(value(r * CK + k, 1)));
    if BIAS {
        c.bias = nalgebra::SVector::from_fn(|r, _| T::cast(value(r, 2)));
    }
    c
}

/// Forward against the reference, in `f64` and `f32` (the SIMD kernels where the processor
/// has them), and backward against central finite differences of `sum(r y)` in `f64`.
#[allow(clippy::too_many_arguments)]
fn check2d<
    const COUT: usize,
    const CING: usize,
    const KH: usize,
    const KW: usize,
    const CK: usize,
    const BIAS: bool,
    const CIN: usize,
    const G: usize,
    const HI: usize,
    const WI: usize,
    const HO: usize,
    const WO: usize,
    const SH: usize,
    const SW: usize,
    const PH: usize,
    const PW: usize,
    const DH: usize,
    const DW: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>(
    finite_differences: bool,
) {
    let geo = Geo {
        cin: CIN,
        cout: COUT,
        g: G,
        hi: HI,
        wi: WI,
        ho: HO,
        wo: WO,
        kh: KH,
        kw: KW,
        sh: SH,
        sw: SW,
        ph: PH,
        pw: PW,
        dh: DH,
        dw: DW,
    };
    let conv = conv2d::<f64, COUT, CING, KH, KW, CK, BIAS>();
    let conv32 = conv2d::<f32, COUT, CING, KH, KW, CK, BIAS>();
    let x = SMatrix::<f64, NI, B>::from_fn(|r, c| value(r * B + c, 3));
    let r = SMatrix::<f64, NO, B>::from_fn(|i, c| value(i * B + c, 4));
    let forward = |conv: &Conv2d<f64, COUT, CING, KH, KW, CK, BIAS>, x: &SMatrix<f64, NI, B>| {
        conv.forward::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(x)
    };
    let y = forward(&conv, &x);
    let y32 = conv32
        .forward::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(&x.map(|v| v as f32));
    let w = |o: usize, ci: usize, kh: usize, kw: usize| conv.weight[(o, (ci * KH + kh) * KW + kw)];
    for b in 0..B {
        let column: Vec<f64> = x.column(b).iter().copied().collect();
        let want = conv_ref(geo, &w, conv.bias.as_slice(), &column);
        for (i, &v) in want.iter().enumerate() {
            close(
                y[(i, b)],
                v,
                1e-12,
                &format!("{geo:?} forward f64 [{i}, {b}]"),
            );
            close(
                y32[(i, b)] as f64,
                v,
                1e-4,
                &format!("{geo:?} forward f32 [{i}, {b}]"),
            );
        }
    }

    // Backward: dy = r, so the gradients are those of sum(r y).
    let mut grads = Conv2d::<f64, COUT, CING, KH, KW, CK, BIAS>::zeros();
    grads.weight.fill(7.0); // overwritten, not added to
    grads.bias.fill(7.0);
    let dx = conv
        .backward::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(&x, &r, &mut grads);
    let mut only = Conv2d::<f64, COUT, CING, KH, KW, CK, BIAS>::zeros();
    conv.backward_params::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(
        &x, &r, &mut only,
    );
    assert_eq!(only, grads);
    let mut grads32 = Conv2d::<f32, COUT, CING, KH, KW, CK, BIAS>::zeros();
    let dx32 = conv32.backward::<CIN, G, HI, WI, HO, WO, SH, SW, PH, PW, DH, DW, NI, NO, B>(
        &x.map(|v| v as f32),
        &r.map(|v| v as f32),
        &mut grads32,
    );
    if !BIAS {
        assert!(grads.bias.iter().all(|&v| v == 0.0));
    }
    // Exact gradients of the bilinear loss, summed term by term.
    let mut dw_want = SMatrix::<f64, COUT, CK>::zeros();
    let mut db_want = [0.0; COUT];
    let mut dx_want = SMatrix::<f64, NI, B>::zeros();
    for b in 0..B {
        for o in 0..COUT {
            for p in 0..HO * WO {
                let d = r[(o * HO * WO + p, b)];
                db_want[o] += d;
                let (ho, wo) = (p / WO, p % WO);
                for ci in 0..CING {
                    for kh in 0..KH {
                        for kw in 0..KW {
                            let h = (ho * SH + kh * DH) as isize - PH as isize;
                            let v = (wo * SW + kw * DW) as isize - PW as isize;
                            if h < 0 || v < 0 || h >= HI as isize || v >= WI as isize {
                                continue;
                            }
                            let c = o / (COUT / G) * CING + ci;
                            let at = c * HI * WI + h as usize * WI + v as usize;
                            let k = (ci * KH + kh) * KW + kw;
                            dw_want[(o, k)] += d * x[(at, b)];
                            dx_want[(at, b)] += d * conv.weight[(o, k)];
                        }
                    }
                }
            }
        }
    }
    for (i, (&g, &want)) in grads.weight.iter().zip(dw_want.iter()).enumerate() {
        close(g, want, 1e-12, &format!("{geo:?} dW {i}"));
        close(
            grads32.weight.as_slice()[i] as f64,
            want,
            1e-4,
            &format!("{geo:?} dW f32 {i}"),
        );
    }
    if BIAS {
        for (o, &want) in db_want.iter().enumerate() {
            close(grads.bias[o], want, 1e-12, "db");
            close(grads32.bias[o] as f64, want, 1e-4, "db f32");
        }
    }
    for (i, (&g, &want)) in dx.iter().zip(dx_want.iter()).enumerate() {
        close(g, want, 1e-12, &format!("{geo:?} dx {i}"));
        close(
            dx32.as_slice()[i] as f64,
            want,
            1e-4,
            &format!("{geo:?} dx f32 {i}"),
        );
    }

    if finite_differences {
        let loss = |conv: &Conv2d<f64, COUT, CING, KH, KW, CK, BIAS>, x: &SMatrix<f64, NI, B>| {
            forward(conv, x).component_mul(&r).sum()
        };
        let h = 1e-6;
        for i in 0..COUT * CK {
            let (mut plus, mut minus) = (conv.clone(), conv.clone());
            plus.weight.as_mut_slice()[i] += h;
            minus.weight.as_mut_slice()[i] -= h;
            let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
            close(
                grads.weight.as_slice()[i],
                fd,
                1e-6,
                "dW finite differences",
            );
        }
        if BIAS {
            for o in 0..COUT {
                let (mut plus, mut minus) = (conv.clone(), conv.clone());
                plus.bias[o] += h;
                minus.bias[o] -= h;
                let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
                close(grads.bias[o], fd, 1e-6, "db finite differences");
            }
        }
        for i in 0..NI * B {
            let (mut plus, mut minus) = (x, x);
            plus.as_mut_slice()[i] += h;
            minus.as_mut_slice()[i] -= h;
            let fd = (loss(&conv, &plus) - loss(&conv, &minus)) / (2.0 * h);
            close(dx.as_slice()[i], fd, 1e-6, "dx finite differences");
        }
    }
}

/// Runs `f` on a thread with a large stack: the checks keep whole batches (and their
/// references) on the stack, which an unoptimised build does not share out.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the check passed");
}

#[test]
fn conv2d_matches_the_reference_and_its_gradients() {
    big_stack(conv2d_cases);
}

fn conv2d_cases() {
    // Groups, strides, padding, dilation, a rectangular kernel, no bias:
    // HO = (5 + 2 - 2 - 1) / 2 + 1 = 3, WO = (7 + 4 - 2 - 1) / 1 + 1 = 9.
    check2d::<6, 2, 2, 3, 12, false, 4, 2, 5, 7, 3, 9, 2, 1, 1, 2, 2, 1, 140, 162, 3>(true);
    // A plain 3 x 3 with bias and padding, one group.
    check2d::<5, 3, 3, 3, 27, true, 3, 1, 6, 6, 6, 6, 1, 1, 1, 1, 1, 1, 108, 180, 2>(true);
    // Stride 3 along the width, dilation 2 along the height, one sample, depthwise (G = CIN).
    // HO = (7 + 0 - 4 - 1) / 1 + 1 = 3, WO = (8 + 2 - 2 - 1) / 3 + 1 = 3.
    check2d::<6, 1, 3, 2, 6, true, 3, 3, 7, 8, 3, 3, 1, 3, 0, 1, 2, 1, 168, 54, 1>(true);
    // The digits network's two convolutions, batch 32 (the SIMD kernels in f32).
    check2d::<16, 1, 3, 3, 9, true, 1, 1, 8, 8, 8, 8, 1, 1, 1, 1, 1, 1, 64, 1024, 32>(false);
    check2d::<32, 16, 3, 3, 144, true, 16, 1, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1, 256, 512, 32>(false);
    // The direct 3x3 kernels' other register blocks in f32 (simd/conv.rs): the network's
    // middle convolution (two vectors of output channels, blocks of 6 kernel entries), one
    // vector of outputs (blocks of 12, then of 3), three vectors on a 8 x 4 map (rows of four
    // paired), no bias.
    check2d::<16, 16, 3, 3, 144, true, 16, 1, 8, 8, 8, 8, 1, 1, 1, 1, 1, 1, 1024, 1024, 3>(false);
    check2d::<8, 6, 3, 3, 54, false, 6, 1, 8, 8, 8, 8, 1, 1, 1, 1, 1, 1, 384, 512, 2>(false);
    check2d::<24, 4, 3, 3, 36, true, 4, 1, 8, 4, 8, 4, 1, 1, 1, 1, 1, 1, 128, 768, 2>(true);
    // A kernel that covers the whole padded input: one output.
    check2d::<2, 2, 3, 3, 18, true, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2>(true);
}

/// A 1-D convolution against the reference (as a `(CIN, 1, LI)` map) in `f64` and `f32`, and
/// its gradients against central finite differences of `sum(r y)`.
fn check1d<
    const COUT: usize,
    const CING: usize,
    const K: usize,
    const CK: usize,
    const BIAS: bool,
    const CIN: usize,
    const G: usize,
    const LI: usize,
    const LO: usize,
    const S: usize,
    const P: usize,
    const D: usize,
    const NI: usize,
    const NO: usize,
    const B: usize,
>() {
    let geo = Geo {
        cin: CIN,
        cout: COUT,
        g: G,
        hi: 1,
        wi: LI,
        ho: 1,
        wo: LO,
        kh: 1,
        kw: K,
        sh: 1,
        sw: S,
        ph: 0,
        pw: P,
        dh: 1,
        dw: D,
    };
    let mut conv = Conv1d::<f64, COUT, CING, K, CK, BIAS>::zeros();
    conv.weight = SMatrix::from_fn(|r, k| value(r * CK + k, 5));
    if BIAS {
        conv.bias = nalgebra::SVector::from_fn(|r, _| value(r, 6));
    }
    let conv32 = Conv1d::<f32, COUT, CING, K, CK, BIAS> {
        weight: conv.weight.map(|v| v as f32),
        bias: conv.bias.map(|v| v as f32),
    };
    let x = SMatrix::<f64, NI, B>::from_fn(|r, c| value(r * B + c, 7));
    let r = SMatrix::<f64, NO, B>::from_fn(|i, c| value(i * B + c, 8));
    let forward = |conv: &Conv1d<f64, COUT, CING, K, CK, BIAS>, x: &SMatrix<f64, NI, B>| {
        conv.forward::<CIN, G, LI, LO, S, P, D, NI, NO, B>(x)
    };
    let y = forward(&conv, &x);
    let y32 = conv32.forward::<CIN, G, LI, LO, S, P, D, NI, NO, B>(&x.map(|v| v as f32));
    let w = |o: usize, ci: usize, _: usize, k: usize| conv.weight[(o, ci * K + k)];
    for b in 0..B {
        let column: Vec<f64> = x.column(b).iter().copied().collect();
        let want = conv_ref(geo, &w, conv.bias.as_slice(), &column);
        for (i, &v) in want.iter().enumerate() {
            close(y[(i, b)], v, 1e-12, &format!("{geo:?} forward [{i}, {b}]"));
            close(
                y32[(i, b)] as f64,
                v,
                1e-4,
                &format!("{geo:?} forward f32 [{i}, {b}]"),
            );
        }
    }
    let mut grads = Conv1d::<f64, COUT, CING, K, CK, BIAS>::zeros();
    grads.weight.fill(7.0);
    let dx = conv.backward::<CIN, G, LI, LO, S, P, D, NI, NO, B>(&x, &r, &mut grads);
    let mut only = Conv1d::zeros();
    conv.backward_params::<CIN, G, LI, LO, S, P, D, NI, NO, B>(&x, &r, &mut only);
    assert_eq!(only, grads);
    let loss = |conv: &Conv1d<f64, COUT, CING, K, CK, BIAS>, x: &SMatrix<f64, NI, B>| {
        forward(conv, x).component_mul(&r).sum()
    };
    let h = 1e-6;
    for i in 0..COUT * CK {
        let (mut plus, mut minus) = (conv.clone(), conv.clone());
        plus.weight.as_mut_slice()[i] += h;
        minus.weight.as_mut_slice()[i] -= h;
        let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
        close(
            grads.weight.as_slice()[i],
            fd,
            1e-6,
            "Conv1d dW finite differences",
        );
    }
    for o in 0..COUT {
        let (mut plus, mut minus) = (conv.clone(), conv.clone());
        plus.bias[o] += h;
        minus.bias[o] -= h;
        let fd = (loss(&plus, &x) - loss(&minus, &x)) / (2.0 * h);
        let want = if BIAS { fd } else { 0.0 };
        close(grads.bias[o], want, 1e-6, "Conv1d db finite differences");
    }
    for i in 0..NI * B {
        let (mut plus, mut minus) = (x, x);
        plus.as_mut_slice()[i] += h;
        minus.as_mut_slice()[i] -= h;
        let fd = (loss(&conv, &plus) - loss(&conv, &minus)) / (2.0 * h);
        close(dx.as_slice()[i], fd, 1e-6, "Conv1d dx finite differences");
    }
}

#[test]
fn conv1d_matches_the_reference_and_its_gradients() {
    // Groups, stride 2, padding 1, dilation 2, no bias: LO = (10 + 2 - 4 - 1) / 2 + 1 = 4.
    check1d::<6, 2, 3, 6, false, 4, 2, 10, 4, 2, 1, 2, 40, 24, 3>();
    // A plain one with bias, large enough for the SIMD kernels in f32.
    check1d::<8, 4, 5, 20, true, 4, 1, 16, 16, 1, 2, 1, 64, 128, 4>();
}

#[test]
fn tensors_pairs_and_counts() {
    let mut conv = Conv2d::<f32, 6, 2, 2, 3, 12, true>::zeros();
    let mut seen = Vec::new();
    conv.visit("3.", &mut |name, shape, data| {
        seen.push((name.to_string(), shape.to_vec(), data.len()))
    });
    let want = [
        ("3.weight".to_string(), vec![6, 2, 2, 3], 72),
        ("3.bias".to_string(), vec![6], 6),
    ];
    assert_eq!(seen, want);
    let mut names = Vec::new();
    conv.visit_mut("", &mut |name, shape, _| {
        names.push((name.to_string(), shape.to_vec()))
    });
    assert_eq!(names[0], ("weight".to_string(), vec![6, 2, 2, 3]));
    assert_eq!(Conv2d::<f32, 6, 2, 2, 3, 12, true>::PARAMS, 78);
    assert_eq!(Conv2d::<f32, 6, 2, 2, 3, 12, true>::TENSORS, 2);
    assert_eq!(Conv2d::<f32, 6, 2, 2, 3, 12, false>::PARAMS, 72);
    assert_eq!(Conv2d::<f32, 6, 2, 2, 3, 12, false>::TENSORS, 1);

    let no_bias = Conv1d::<f64, 4, 3, 5, 15, false>::zeros();
    let mut seen = Vec::new();
    no_bias.visit("", &mut |name, shape, _| {
        seen.push((name.to_string(), shape.to_vec()))
    });
    assert_eq!(seen, [("weight".to_string(), vec![4, 3, 5])]);
    assert_eq!(Conv1d::<f64, 4, 3, 5, 15, true>::PARAMS, 64);
    assert_eq!(Conv1d::<f64, 4, 3, 5, 15, true>::TENSORS, 2);

    // Pairs: as many as TENSORS, each beside its gradient.
    let grads = Conv2d::<f32, 6, 2, 2, 3, 12, true>::zeros();
    let mut params: Vec<&mut [f32]> = (0..3).map(|_| &mut [][..]).collect();
    let mut gs: Vec<&[f32]> = vec![&[]; 3];
    let mut at = 1;
    conv.pair(&grads, &mut params, &mut gs, &mut at);
    assert_eq!(at, 3);
    assert_eq!((params[1].len(), params[2].len()), (72, 6));
    assert_eq!((gs[1].len(), gs[2].len()), (72, 6));
    let mut conv1 = Conv1d::<f64, 4, 3, 5, 15, false>::zeros();
    let grads1 = conv1.clone();
    let mut params: Vec<&mut [f64]> = (0..2).map(|_| &mut [][..]).collect();
    let mut gs: Vec<&[f64]> = vec![&[]; 2];
    let mut at = 0;
    conv1.pair(&grads1, &mut params, &mut gs, &mut at);
    assert_eq!(at, 1);
    assert_eq!(params[0].len(), 60);
}

#[test]
fn reset_draws_torch_bounds_in_torch_order() {
    // Weight row-major in torch's [COUT, CING, KH, KW] order, then the bias; all within
    // 1 / sqrt(CK).
    let mut conv = Conv2d::<f64, 3, 2, 2, 3, 12, true>::zeros();
    conv.reset(&mut Init::new(9));
    let bound = 1.0 / 12f64.sqrt();
    let mut init = Init::new(9);
    for o in 0..3 {
        for ci in 0..2 {
            for kh in 0..2 {
                for kw in 0..3 {
                    let v: f64 = init.uniform(bound);
                    assert_eq!(conv.weight[(o, (ci * 2 + kh) * 3 + kw)], v);
                }
            }
        }
    }
    for o in 0..3 {
        assert_eq!(conv.bias[o], init.uniform::<f64>(bound));
    }
    assert!(
        conv.weight
            .iter()
            .chain(conv.bias.iter())
            .all(|v| v.abs() <= bound)
    );
    assert!(conv.weight.amax() > bound / 2.0);

    // Without a bias only the weight is drawn, and the bias stays zero.
    let mut conv = Conv1d::<f64, 2, 3, 4, 12, false>::zeros();
    let mut init = Init::new(4);
    conv.reset(&mut init);
    assert!(conv.bias.iter().all(|&v| v == 0.0));
    let mut again = Init::new(4);
    for o in 0..2 {
        for c in 0..12 {
            assert_eq!(conv.weight[(o, c)], again.uniform::<f64>(bound));
        }
    }
    assert_eq!(init.uniform::<f64>(1.0), again.uniform::<f64>(1.0));
}

/// A pool's geometry, for the references (`KH = 1`, `HI = HO = 1` for a 1-D one).
#[derive(Clone, Copy, Debug)]
struct PoolGeo {
    c: usize,
    hi: usize,
    wi: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
}

/// Torch's pools of one sample from their definitions, on the explicitly padded map:
/// `max` over the window with `-inf` in the padding, or the window's sum (zeros in the
/// padding) over `KH KW`.
fn pool_ref(geo: PoolGeo, max: bool, x: &[f64]) -> Vec<f64> {
    let mut y = Vec::new();
    for c in 0..geo.c {
        for ho in 0..geo.ho {
            for wo in 0..geo.wo {
                let mut values = Vec::new();
                for kh in 0..geo.kh {
                    for kw in 0..geo.kw {
                        let h = (ho * geo.sh + kh) as isize - geo.ph as isize;
                        let w = (wo * geo.sw + kw) as isize - geo.pw as isize;
                        let inside = h >= 0 && w >= 0 && h < geo.hi as isize && w < geo.wi as isize;
                        values.push(if inside {
                            x[c * geo.hi * geo.wi + h as usize * geo.wi + w as usize]
                        } else if max {
                            f64::NEG_INFINITY
                        } else {
                            0.0
                        });
                    }
                }
                y.push(if max {
                    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                } else {
                    values.iter().sum::<f64>() / (geo.kh * geo.kw) as f64
                });
            }
        }
    }
    y
}

/// A batch of distinct values (so that every window's maximum is unique) in `[-1, 1)`.
fn distinct<const R: usize, const B: usize>(salt: usize) -> SMatrix<f64, R, B> {
    assert!(R * B < 1000);
    SMatrix::from_fn(|r, c| value(r * B + c, salt))
}

/// A pool's forward pass against its reference and its backward pass against central
/// finite differences of `sum(r y)`.
fn check_pool<const NI: usize, const NO: usize, const B: usize>(
    geo: PoolGeo,
    max: bool,
    forward: impl Fn(&SMatrix<f64, NI, B>) -> SMatrix<f64, NO, B>,
    backward: impl Fn(&SMatrix<f64, NI, B>, &SMatrix<f64, NO, B>) -> SMatrix<f64, NI, B>,
) {
    let x = distinct::<NI, B>(11);
    let r = SMatrix::<f64, NO, B>::from_fn(|i, c| value(i * B + c, 12));
    let y = forward(&x);
    for b in 0..B {
        let column: Vec<f64> = x.column(b).iter().copied().collect();
        let want = pool_ref(geo, max, &column);
        assert_eq!(want.len(), NO);
        for (i, &v) in want.iter().enumerate() {
            close(
                y[(i, b)],
                v,
                1e-12,
                &format!("{geo:?} max {max} [{i}, {b}]"),
            );
        }
    }
    let dx = backward(&x, &r);
    // Small steps: the inputs are 0.002 apart at least, so no maximum changes hands.
    let h = 1e-7;
    for i in 0..NI * B {
        let (mut plus, mut minus) = (x, x);
        plus.as_mut_slice()[i] += h;
        minus.as_mut_slice()[i] -= h;
        let loss = |x: &SMatrix<f64, NI, B>| forward(x).component_mul(&r).sum();
        let fd = (loss(&plus) - loss(&minus)) / (2.0 * h);
        close(
            dx.as_slice()[i],
            fd,
            1e-6,
            &format!("{geo:?} max {max} dx {i}"),
        );
    }
}

#[test]
fn pools_match_the_reference_and_their_gradients() {
    use nn_runtime::__private::*;
    // A 3 x 2 kernel, stride (2, 1) != kernel, padding (1, 1):
    // HO = (5 + 2 - 3) / 2 + 1 = 3, WO = (6 + 2 - 2) / 1 + 1 = 7.
    let geo = PoolGeo {
        c: 2,
        hi: 5,
        wi: 6,
        ho: 3,
        wo: 7,
        kh: 3,
        kw: 2,
        sh: 2,
        sw: 1,
        ph: 1,
        pw: 1,
    };
    check_pool::<60, 42, 2>(
        geo,
        true,
        max_pool2d::<f64, 2, 5, 6, 3, 7, 3, 2, 2, 1, 1, 1, 60, 42, 2>,
        max_pool2d_backward::<f64, 2, 5, 6, 3, 7, 3, 2, 2, 1, 1, 1, 60, 42, 2>,
    );
    check_pool::<60, 42, 2>(
        geo,
        false,
        avg_pool2d::<f64, 2, 5, 6, 3, 7, 3, 2, 2, 1, 1, 1, 60, 42, 2>,
        |_, dy| avg_pool2d_backward::<f64, 2, 5, 6, 3, 7, 3, 2, 2, 1, 1, 1, 60, 42, 2>(dy),
    );
    // Digits: 2 x 2, stride 2, on 16 channels of 8 x 8 (one sample: 1024 distinct values).
    let geo = PoolGeo {
        c: 3,
        hi: 8,
        wi: 8,
        ho: 4,
        wo: 4,
        kh: 2,
        kw: 2,
        sh: 2,
        sw: 2,
        ph: 0,
        pw: 0,
    };
    check_pool::<192, 48, 1>(
        geo,
        true,
        max_pool2d::<f64, 3, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0, 192, 48, 1>,
        max_pool2d_backward::<f64, 3, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0, 192, 48, 1>,
    );
    check_pool::<192, 48, 1>(
        geo,
        false,
        avg_pool2d::<f64, 3, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0, 192, 48, 1>,
        |_, dy| avg_pool2d_backward::<f64, 3, 8, 8, 4, 4, 2, 2, 2, 2, 0, 0, 192, 48, 1>(dy),
    );
    // 1-D: kernel 3, stride 2, padding 1: LO = (9 + 2 - 3) / 2 + 1 = 5.
    let geo = PoolGeo {
        c: 3,
        hi: 1,
        wi: 9,
        ho: 1,
        wo: 5,
        kh: 1,
        kw: 3,
        sh: 1,
        sw: 2,
        ph: 0,
        pw: 1,
    };
    check_pool::<27, 15, 3>(
        geo,
        true,
        max_pool1d::<f64, 3, 9, 5, 3, 2, 1, 27, 15, 3>,
        max_pool1d_backward::<f64, 3, 9, 5, 3, 2, 1, 27, 15, 3>,
    );
    check_pool::<27, 15, 3>(
        geo,
        false,
        avg_pool1d::<f64, 3, 9, 5, 3, 2, 1, 27, 15, 3>,
        |_, dy| avg_pool1d_backward::<f64, 3, 9, 5, 3, 2, 1, 27, 15, 3>(dy),
    );
    // Global averages: (C, H W) to (C, 1, 1), as average pools of the whole map.
    let geo = PoolGeo {
        c: 3,
        hi: 2,
        wi: 3,
        ho: 1,
        wo: 1,
        kh: 2,
        kw: 3,
        sh: 1,
        sw: 1,
        ph: 0,
        pw: 0,
    };
    check_pool::<18, 3, 2>(
        geo,
        false,
        adaptive_avg_pool2d_1::<f64, 3, 6, 18, 2>,
        |_, dy| adaptive_avg_pool2d_1_backward::<f64, 3, 6, 18, 2>(dy),
    );
    let geo = PoolGeo {
        c: 3,
        hi: 1,
        wi: 6,
        ho: 1,
        wo: 1,
        kh: 1,
        kw: 6,
        sh: 1,
        sw: 1,
        ph: 0,
        pw: 0,
    };
    check_pool::<18, 3, 2>(
        geo,
        false,
        adaptive_avg_pool1d_1::<f64, 3, 6, 18, 2>,
        |_, dy| adaptive_avg_pool1d_1_backward::<f64, 3, 6, 18, 2>(dy),
    );
}

#[test]
fn max_pool_ties_go_to_the_first_in_scan_order() {
    use nn_runtime::__private::{max_pool2d, max_pool2d_backward};
    // One 3 x 3 map of equal values, 2 x 2 windows at stride 1: each window's gradient goes to
    // its top-left input, as torch's CPU kernel's.
    let x = SMatrix::<f32, 9, 1>::from_element(1.0);
    let dy = SMatrix::<f32, 4, 1>::from_column_slice(&[1.0, 2.0, 3.0, 4.0]);
    let y = max_pool2d::<f32, 1, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0, 9, 4, 1>(&x);
    assert_eq!(y, SMatrix::<f32, 4, 1>::from_element(1.0));
    let dx = max_pool2d_backward::<f32, 1, 3, 3, 2, 2, 2, 2, 1, 1, 0, 0, 9, 4, 1>(&x, &dy);
    let want = [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0];
    assert_eq!(dx.as_slice(), want);
    // A window of -inf only (with padding) still picks its first real input.
    let x = SMatrix::<f32, 4, 1>::from_element(f32::NEG_INFINITY);
    let y = max_pool2d::<f32, 1, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 4, 9, 1>(&x);
    assert!(y.iter().all(|&v| v == f32::NEG_INFINITY));
    let dy = SMatrix::<f32, 9, 1>::from_element(1.0);
    let dx = max_pool2d_backward::<f32, 1, 2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 4, 9, 1>(&x, &dy);
    // Each input is the first real one of the windows that hold it at their top left.
    assert_eq!(dx.as_slice(), [4.0, 2.0, 2.0, 1.0]);
}
