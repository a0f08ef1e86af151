//! Parity of the online-learning kit with PyTorch: learning-rate schedules
//! (`nn_runtime::lr_scheduler`) and gradient clipping (`nn_runtime::clip`).
//!
//! The fixtures in `tests/fixtures/online/` are written by `scripts/torch_online.py`:
//!
//! - `schedulers.json`: for each schedule case, torch's learning rate after construction and
//!   after each of 50 steps (Python floats). Ours must be the same `f64` bit for bit: the
//!   schedules compute torch's expressions in torch's order, and `cos`, `pow` are the C
//!   library's in both. An `f32` optimizer must hold each of them rounded once.
//! - `clip_f32.json`, `clip_f64.json`: a `Linear(3, 5), Tanh, Linear(5, 2)` model's gradients
//!   (MSE on a batch of 4) before and after `clip_grad_norm_` (L2 and infinity norms, below and
//!   above the norm) and `clip_grad_value_`. Torch's gradients are clipped by our functions and
//!   compared within 1e-6 relative in `f32` (torch sums squares in `f32` lanes, we in `f64`) and
//!   1e-12 in `f64`; our own gradients of the same model are checked against torch's first,
//!   and a `train_step` with a [`Clipped`] SGD is checked against torch's clipped gradients.

use nn_runtime::clip::{Clipped, NormType, clip_grad_norm, clip_grad_norm_with, clip_grad_value};
use nn_runtime::lr_scheduler::{
    CosineAnnealingLR, ExponentialLR, LinearLR, LrScheduler, Mode, MultiStepLR, ReduceLROnPlateau,
    StepLR, ThresholdMode,
};
use nn_runtime::prelude::*;
use nn_testkit::fixtures::{list, load, matrix, number, samples, vector};
use serde_json::Value;

/// Schedule cases that must be in the fixture: a missing one fails instead of shrinking the test.
const SCHEDULES: &[&str] = &[
    "step_default_gamma",
    "step_gamma",
    "multistep",
    "multistep_zero_gamma",
    "exponential",
    "exponential_slow",
    "cosine_full",
    "cosine_past_t_max",
    "cosine_t_max_1",
    "cosine_t_max_3",
    "linear_default",
    "linear_warmup",
    "linear_decay",
    "plateau_min_rel",
    "plateau_min_abs",
    "plateau_max_rel",
    "plateau_max_abs_eps",
    "plateau_default",
];

// ------------------------------------------------------------------------------------------------
// Schedules.

/// A double written as its bits (`"0x..."`), exactly.
fn bits(value: &Value) -> f64 {
    let hex = value.as_str().and_then(|s| s.strip_prefix("0x"));
    let hex = hex.unwrap_or_else(|| panic!("{value}: not a 0x... bit pattern"));
    f64::from_bits(u64::from_str_radix(hex, 16).expect("hex bits"))
}

/// The keyword argument `name` of `args` as a float, if given.
fn float(args: &Value, name: &str) -> Option<f64> {
    args.get(name).map(|v| number(v, name))
}

/// The keyword argument `name` of `args` as a count, if given.
fn count(args: &Value, name: &str) -> Option<usize> {
    float(args, name).map(|v| v as usize)
}

/// The keyword argument `name` of `args` as a string, if given.
fn string<'a>(args: &'a Value, name: &str) -> Option<&'a str> {
    args.get(name)
        .map(|v| v.as_str().unwrap_or_else(|| panic!("{name}: not a string")))
}

/// Asserts that every argument of `args` is one of `known`: an argument we did not pass on
/// would make the comparison meaningless.
fn only(args: &Value, known: &[&str], case: &str) {
    for key in args.as_object().expect("args is an object").keys() {
        assert!(
            known.contains(&key.as_str()),
            "{case}: argument {key} not handled"
        );
    }
}

/// Our learning rates for `case` at epochs 0..=steps, on an optimizer of scalar `T` (the
/// schedule's own `f64` rate, and the optimizer's), through the public constructors and
/// builders (only the arguments torch was given, so torch's defaults are checked too).
fn run<T: Real>(case: &Value, steps: usize) -> Vec<(f64, T)> {
    let name = case["name"].as_str().expect("case name");
    let class = case["class"].as_str().expect("class");
    let args = &case["args"];
    let mut opt = Sgd::new(T::cast(bits(&case["base_lr_bits"])));
    let mut out = Vec::new();
    macro_rules! drive {
        ($scheduler:expr) => {{
            let mut s = $scheduler;
            out.push((s.last_lr(), opt.lr()));
            for _ in 0..steps {
                s.step(&mut opt);
                out.push((s.last_lr(), opt.lr()));
            }
        }};
    }
    match class {
        "StepLR" => {
            only(args, &["step_size", "gamma"], name);
            let s = StepLR::new(&opt, count(args, "step_size").expect("step_size"));
            drive!(match float(args, "gamma") {
                Some(g) => s.gamma(g),
                None => s,
            })
        }
        "MultiStepLR" => {
            only(args, &["milestones", "gamma"], name);
            let milestones: Vec<usize> = args["milestones"]
                .as_array()
                .expect("milestones")
                .iter()
                .map(|m| number(m, "milestone") as usize)
                .collect();
            drive!(match float(args, "gamma") {
                Some(g) => MultiStepLR::with_gamma(&mut opt, &milestones, g),
                None => MultiStepLR::new(&mut opt, &milestones),
            })
        }
        "ExponentialLR" => {
            only(args, &["gamma"], name);
            drive!(ExponentialLR::new(
                &opt,
                float(args, "gamma").expect("gamma")
            ))
        }
        "CosineAnnealingLR" => {
            only(args, &["T_max", "eta_min"], name);
            let s = CosineAnnealingLR::new(&opt, count(args, "T_max").expect("T_max"));
            drive!(match float(args, "eta_min") {
                Some(e) => s.eta_min(e),
                None => s,
            })
        }
        "LinearLR" => {
            only(args, &["start_factor", "end_factor", "total_iters"], name);
            drive!(if args.as_object().unwrap().is_empty() {
                LinearLR::warmup(&mut opt)
            } else {
                LinearLR::new(
                    &mut opt,
                    float(args, "start_factor").unwrap_or(1.0 / 3.0),
                    float(args, "end_factor").unwrap_or(1.0),
                    count(args, "total_iters").unwrap_or(5),
                )
            })
        }
        "ReduceLROnPlateau" => {
            let metrics = list(&case["metric_bits"], "metric_bits", steps);
            let mut s = plateau(&opt, args, name);
            out.push((s.last_lr(), opt.lr()));
            for metric in metrics {
                s.step(&mut opt, bits(metric));
                out.push((s.last_lr(), opt.lr()));
            }
        }
        other => panic!("{name}: unknown class {other}"),
    }
    out
}

/// A `ReduceLROnPlateau` from torch's keyword arguments.
fn plateau<T: Real>(opt: &Sgd<T>, args: &Value, case: &str) -> ReduceLROnPlateau {
    let known = [
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
    ];
    only(args, &known, case);
    let mut s = ReduceLROnPlateau::new(opt);
    if let Some(mode) = string(args, "mode") {
        s = s.mode(if mode == "max" { Mode::Max } else { Mode::Min });
    }
    if let Some(mode) = string(args, "threshold_mode") {
        let abs = mode == "abs";
        s = s.threshold_mode(if abs {
            ThresholdMode::Abs
        } else {
            ThresholdMode::Rel
        });
    }
    if let Some(v) = float(args, "factor") {
        s = s.factor(v);
    }
    if let Some(v) = count(args, "patience") {
        s = s.patience(v);
    }
    if let Some(v) = float(args, "threshold") {
        s = s.threshold(v);
    }
    if let Some(v) = count(args, "cooldown") {
        s = s.cooldown(v);
    }
    if let Some(v) = float(args, "min_lr") {
        s = s.min_lr(v);
    }
    if let Some(v) = float(args, "eps") {
        s = s.eps(v);
    }
    s
}

/// Units in the last place a schedule may differ from torch's in `f64`: none, but where the
/// formula calls `cos`. Python computes it with the platform's C library (glibc here), the
/// runtime with `libm` in every build (so that results do not depend on the target's C
/// library, and the `no_std` build equals the `std` one); the two differ by an ulp now and
/// then, and the recursive formula carries it on to later epochs. Measured (the test prints
/// the widest gap of every case with `--nocapture`): 3 ulps in `cosine_past_t_max`, 0 in
/// every other case.
fn transcendental_ulps(name: &str) -> u64 {
    if name.starts_with("cosine") { 4 } else { 0 }
}

#[test]
fn every_schedule_matches_torchs() {
    let fixture = load("online", "schedulers");
    let steps = number(&fixture["steps"], "steps") as usize;
    assert_eq!(steps, 50);
    let cases = fixture["cases"].as_array().expect("cases");
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, SCHEDULES, "the fixture's cases");
    let mut reductions = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let torch: Vec<f64> = list(&case["lr_bits"], "lr_bits", steps + 1)
            .iter()
            .map(bits)
            .collect();
        let ours = run::<f64>(case, steps);
        let ulps = transcendental_ulps(name);
        let mut widest = 0;
        for (epoch, (&want, &(schedule, held))) in torch.iter().zip(&ours).enumerate() {
            assert_eq!(
                schedule.to_bits(),
                held.to_bits(),
                "{name}: the optimizer's rate"
            );
            let apart = schedule.to_bits().abs_diff(want.to_bits());
            widest = widest.max(apart);
            assert!(
                apart <= ulps,
                "{name}: epoch {epoch}: ours {schedule}, torch {want}: {apart} ulps apart \
                 (at most {ulps})"
            );
        }
        println!("{name}: at most {widest} ulps from torch's rates");
        // An f32 optimizer starts from torch's base rate rounded to f32 (a few 1e-8 off), and
        // the schedule then runs in f64 from there: each rate is near torch's, and the
        // optimizer holds it rounded once (not a product of rounded rates).
        for (epoch, (&want, &(schedule, held))) in
            torch.iter().zip(&run::<f32>(case, steps)).enumerate()
        {
            let close = (schedule - want).abs() <= 1e-7 * want.abs();
            assert!(
                close,
                "{name} (f32): epoch {epoch}: {schedule} vs torch {want}"
            );
            assert_eq!(
                held, schedule as f32,
                "{name} (f32): epoch {epoch}: rounded once"
            );
        }
        reductions += torch.windows(2).filter(|w| w[1] < w[0]).count();
    }
    // The fixture exercises the schedules: rates change many times.
    assert!(
        reductions > 100,
        "only {reductions} rate reductions in the fixture"
    );
}

// ------------------------------------------------------------------------------------------------
// Clipping.

network! {
    /// The clipping fixture's model in f32.
    pub struct Clip32 { Linear(3, 5), Tanh, Linear(5, 2) }
}

network! {
    /// The clipping fixture's model in f64.
    pub struct Clip64: f64 { Linear(3, 5), Tanh, Linear(5, 2) }
}

/// Asserts `ours` is within `tolerance` relative of `torch`, element by element.
fn assert_close<T: Real>(ours: &[T], torch: &[T], tolerance: f64, what: &str) {
    assert_near(ours, torch, tolerance, 0.0, what);
}

/// Asserts `|ours - torch| <= tolerance max(|torch|, floor max|torch|)` for every element: a
/// relative error, with an absolute floor of `floor` of the largest magnitude for elements
/// that are small beside the rest (which carry the rounding of those large ones).
fn assert_near<T: Real>(ours: &[T], torch: &[T], tolerance: f64, floor: f64, what: &str) {
    assert_eq!(ours.len(), torch.len(), "{what}: length");
    let scale = torch.iter().fold(0.0f64, |m, t| m.max(t.widen().abs()));
    for (i, (o, t)) in ours.iter().zip(torch).enumerate() {
        let (o, t) = (o.widen(), t.widen());
        let close = (o - t).abs() <= tolerance * t.abs().max(scale * floor);
        assert!(close, "{what}[{i}]: ours {o}, torch {t}");
    }
}

macro_rules! clip_parity {
    ($test:ident, $net:ident, $grads:ident, $t:ty, $file:literal, $tolerance:expr) => {
        #[test]
        fn $test() {
            let fixture = load("online", $file);
            let tolerance: f64 = $tolerance;
            let names: Vec<&str> = fixture["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
            // torch's tensors in the shape of our gradient struct.
            let load_grads = |g: &Value| -> $grads {
                let mut grads = $grads::zeros();
                grads.l0.weight = matrix::<$t, 5, 3>(&g["0.weight"], "0.weight");
                grads.l0.bias = vector::<$t, 5>(&g["0.bias"], "0.bias");
                grads.l2.weight = matrix::<$t, 2, 5>(&g["2.weight"], "2.weight");
                grads.l2.bias = vector::<$t, 2>(&g["2.bias"], "2.bias");
                grads
            };
            let flat = |g: &mut $grads| -> Vec<$t> {
                let mut all = Vec::new();
                nn_runtime::FlatTensors::for_each_tensor_mut(g, &mut |t: &mut [$t]| {
                    all.extend_from_slice(t)
                });
                all
            };
            // The same model: our gradients agree with torch's.
            let mut net = $net::zeros();
            let weights = load_grads(&fixture["weights"]);
            (net.l0, net.l2) = (weights.l0.clone(), weights.l2.clone());
            let xs = samples::<$t, 3, 4>(&fixture["xs"], "xs");
            let ys = samples::<$t, 2, 4>(&fixture["ys"], "ys");
            let (loss, mut ours) = net.gradients(&xs, &ys, &Mse);
            let torch = load_grads(&fixture["grads"]);
            let close = (loss.widen() - number(&fixture["loss"], "loss")).abs();
            assert!(close <= 1e-5 * loss.widen(), "loss {loss}");
            // Saturated tanh units make some elements small and sensitive to tanh's last
            // place (f32's is a rational approximation): checked against the largest.
            let (ours, theirs) = (flat(&mut ours), flat(&mut torch.clone()));
            assert_near(&ours, &theirs, 1e-4, 1.0, "gradients");

            let mut norm_cases = 0;
            for (k, case) in fixture["cases"].as_array().unwrap().iter().enumerate() {
                let mut grads = torch.clone();
                let want = load_grads(&case["grads"]);
                match case["kind"].as_str().unwrap() {
                    "norm" => {
                        let max_norm = <$t>::cast(number(&case["max_norm"], "max_norm"));
                        let total = match &case["norm_type"] {
                            Value::String(s) if s == "inf" => {
                                clip_grad_norm_with(&mut grads, max_norm, NormType::Inf)
                            }
                            t => {
                                assert_eq!(number(t, "norm_type"), 2.0);
                                if k % 2 == 0 {
                                    clip_grad_norm(&mut grads, max_norm)
                                } else {
                                    clip_grad_norm_with(&mut grads, max_norm, NormType::L2)
                                }
                            }
                        };
                        let torch_total = [<$t>::cast(number(&case["total_norm"], "total"))];
                        assert_close(&[total], &torch_total, tolerance, &format!("case {k} norm"));
                        norm_cases += 1;
                    }
                    "value" => {
                        let clip = <$t>::cast(number(&case["clip_value"], "clip_value"));
                        clip_grad_value(&mut grads, clip);
                    }
                    other => panic!("unknown case {other}"),
                }
                let (ours, theirs) = (flat(&mut grads), flat(&mut want.clone()));
                assert_close(&ours, &theirs, tolerance, &format!("case {k} gradients"));
            }
            assert_eq!(norm_cases, 4);

            // Clipping inside train_step, with plain SGD (which would otherwise be fused into
            // the backward pass): the update is torch's clipped gradient times the rate.
            let case = &fixture["cases"][0];
            let max_norm = <$t>::cast(number(&case["max_norm"], "max_norm"));
            let lr = <$t>::cast(0.5);
            let mut opt = Clipped::norm(Sgd::new(lr), max_norm);
            let mut stepped = net.clone();
            stepped.train_step(&xs, &ys, &Mse, &mut opt);
            let mut want = load_grads(&case["grads"]);
            let before = flat(&mut load_grads(&fixture["weights"]));
            let expected: Vec<$t> = before
                .iter()
                .zip(flat(&mut want))
                .map(|(&p, g)| p - lr * g)
                .collect();
            let mut after = $grads::zeros();
            (after.l0, after.l2) = (stepped.l0.clone(), stepped.l2.clone());
            assert_near(
                &flat(&mut after),
                &expected,
                1e-4,
                1.0,
                "train_step with Clipped",
            );
        }
    };
}

clip_parity!(
    clipping_matches_torch_f32,
    Clip32,
    Clip32Grads,
    f32,
    "clip_f32",
    1e-6
);
clip_parity!(
    clipping_matches_torch_f64,
    Clip64,
    Clip64Grads,
    f64,
    "clip_f64",
    1e-12
);

/// A rate set between steps reaches `train_step`'s fused SGD path at once: the step equals one
/// by hand at the new rate.
#[test]
fn set_lr_reaches_the_fused_sgd_path() {
    let net = Clip64::seeded(3);
    let xs = SMatrix::<f64, 3, 4>::from_fn(|r, c| ((r * 4 + c) as f64 * 0.3).sin());
    let ys = SMatrix::<f64, 2, 4>::from_fn(|r, c| ((r + c) as f64 * 0.7).cos());
    let mut opt = Sgd::new(0.1);
    assert_eq!(opt.plain_sgd_rate(), Some(0.1));
    opt.set_lr(0.025);
    let mut stepped = net.clone();
    stepped.train_step(&xs, &ys, &Mse, &mut opt);
    let (_, grads) = net.gradients(&xs, &ys, &Mse);
    let by_hand = net.l0.weight - grads.l0.weight * 0.025;
    let off = (stepped.l0.weight - by_hand).amax();
    assert!(off < 1e-15, "first layer off by {off}");
    let moved = (stepped.l0.weight - net.l0.weight).amax();
    assert!(moved > 1e-4, "the step moved the weights by {moved} only");
}

/// Every optimizer's rate can be read and set, and the next step uses it: a step at rate 0
/// changes nothing (the state still advances, as in torch).
#[test]
fn every_optimizer_has_lr_and_set_lr() {
    fn check<O: Optimizer<f64>>(mut opt: O, lr: f64, name: &str) {
        assert_eq!(opt.lr(), lr, "{name}");
        opt.set_lr(0.0);
        assert_eq!(opt.lr(), 0.0, "{name}");
        let mut p = [1.0, -2.0];
        opt.step(&mut [&mut p], &[&[0.5, 0.25]]);
        assert_eq!(p, [1.0, -2.0], "{name}: a step at rate 0 moved");
        opt.set_lr(0.1);
        opt.step(&mut [&mut p], &[&[0.5, 0.25]]);
        assert!(
            p[0] < 1.0 && p[1] < -2.0,
            "{name}: no step at rate 0.1: {p:?}"
        );
    }
    check(Sgd::new(0.3).momentum(0.9), 0.3, "Sgd");
    check(Adam::new(0.01), 0.01, "Adam");
    check(AdamW::new(0.02), 0.02, "AdamW");
    check(RmsProp::new(0.03), 0.03, "RmsProp");
}

// ------------------------------------------------------------------------------------------------
// What clipping sees.

network! {
    /// Every kind of parameter block the runtime has, some without their bias.
    pub struct Blocks {
        PReLU,
        Linear(4, 6),
        LayerNorm(6, bias = false),
        Unflatten(1, 6),
        Conv1d(1, 2, 3, bias = false),
        Flatten,
        Unflatten(2, 2, 2),
        Conv2d(2, 2, 1),
        BatchNorm2d(2),
        Flatten,
        Residual(Linear(8, 8), Tanh),
        Clip32Inner,
    }
}

network! {
    /// A network to nest.
    pub struct Clip32Inner { Linear(8, 3), PReLU(3) }
}

network! {
    /// The recurrent blocks and the causal convolution.
    pub struct Recurrent { GRU(2, 3, num_layers = 2), LSTM(3, 4, bias = false), RNN(4, 2), Conv1d(2, 2, 2), Linear(2, 1) }
}

/// The slices `FlatTensors` gives of `grads` are exactly the gradient slices `Network::tensors`
/// gives the optimizer: the same memory, in the same order, every one of them.
fn assert_flat_is_the_optimizers_view<N>(net: &N, mut grads: N::Grads)
where
    N: Network + Clone,
    N::Grads: nn_runtime::FlatTensors<Scalar = N::Scalar>,
{
    let mut flat: Vec<(usize, usize)> = Vec::new();
    nn_runtime::FlatTensors::for_each_tensor_mut(&mut grads, &mut |t: &mut [N::Scalar]| {
        flat.push((t.as_ptr() as usize, t.len()))
    });
    let mut copy = net.clone();
    let mut params: Vec<&mut [N::Scalar]> = (0..N::TENSORS)
        .map(|_| -> &mut [N::Scalar] { &mut [] })
        .collect();
    let mut slices: Vec<&[N::Scalar]> = vec![&[]; N::TENSORS];
    let mut at = 0;
    copy.tensors(&grads, &mut params, &mut slices, &mut at);
    assert_eq!(at, N::TENSORS);
    let optimizer: Vec<(usize, usize)> = slices
        .iter()
        .map(|t| (t.as_ptr() as usize, t.len()))
        .collect();
    assert_eq!(flat, optimizer);
    assert_eq!(flat.iter().map(|t| t.1).sum::<usize>(), N::PARAMS);
}

#[test]
fn flat_tensors_are_the_optimizers_gradients() {
    assert_flat_is_the_optimizers_view(&Blocks::seeded(1), Blocks::zero_grads());
    assert_flat_is_the_optimizers_view(&Recurrent::seeded(1), Recurrent::zero_grads());
    assert_flat_is_the_optimizers_view(&Clip64::seeded(1), Clip64::zero_grads());
}
