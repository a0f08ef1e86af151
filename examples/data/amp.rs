//! A guitar-amp-like effect learned from audio: a small recurrent network learns a nonlinear
//! effect with memory, a tube-like asymmetric saturation after a one-pole low-pass,
//!
//! ```text
//! lp[n] = lp[n-1] + a (x[n] - lp[n-1])         a = 1 - exp(-2 pi 1200 Hz / 48 kHz)
//! y[n]  = tanh(G (lp[n] + BIAS)) - tanh(G BIAS)  G = 5, BIAS = 0.1
//! ```
//!
//! from a seeded test signal at 48 kHz (logarithmic sine sweeps and coloured noise bursts at
//! random levels). The network, `Residual(LSTM(1, 16), Linear(16, 1))`, trains by truncated
//! backpropagation through time: a batch of 8 sequences cut from the training signal,
//! consecutive windows of each, the state carried from one window to the next, Adam. Then
//! it runs over held-out audio (another seed) one sample at a time from a zero state, with
//! `process_block` as an audio callback would, and prints
//!
//! - the error-to-signal ratio `ESR = sum (y - y_hat)^2 / sum y^2` on the held-out audio
//!   (after a short warm-up), the usual figure of merit of amp models;
//! - the real-time factor of that streaming inference: samples per second / 48 000;
//!
//! and writes a PNG of target and prediction over a short excerpt to `target/amp.png`.
//!
//! It fails (exit status 1) if the ESR is not below [`GOOD_ESR`], so CI's run of it is a test.
//! Run it with `cargo run --release --example amp` (about two seconds).

use nn_data_examples as common;
use nn_runtime::prelude::*;
use std::error::Error;
use std::path::Path;
use std::time::Instant;

network! {
    /// One sample in, one out: the input plus what the LSTM makes of it (`x + f(x)`), so the
    /// network only learns the effect's departure from a wire.
    pub struct Amp { Residual(LSTM(1, 16), Linear(16, 1)) }
}

/// The sample rate of every signal, in Hz.
pub const RATE: f32 = 48_000.0;
/// The effect's low-pass cutoff, in Hz.
const CUTOFF: f32 = 1_200.0;
/// The saturation's drive.
const DRIVE: f32 = 5.0;
/// The saturation's bias: positive and negative half-waves saturate differently.
const BIAS: f32 = 0.1;

/// Sequences trained side by side (the batch).
pub const BATCH: usize = 8;
/// Time steps per window of truncated backpropagation through time.
pub const WINDOW: usize = 128;
/// Samples of each training sequence; the training signal is `BATCH` of them.
pub const SEQUENCE: usize = 48_000;
/// Passes over the training signal.
pub const EPOCHS: usize = 6;
/// Adam's learning rate.
pub const LR: f32 = 5e-3;
/// Samples of held-out audio the ESR is measured on, and the warm-up skipped at its start.
pub const TEST: usize = 96_000;
const WARM_UP: usize = 1_000;
/// The ESR the trained network must stay below (1 %, -20 dB).
pub const GOOD_ESR: f64 = 0.01;

/// The seeds of the training signal, the held-out signal and the initial weights.
const TRAIN_SEED: u64 = 1;
const TEST_SEED: u64 = 2;
const NET_SEED: u64 = 3;

/// SplitMix64: a small, portable, seeded stream of uniform numbers.
struct Rng(u64);

impl Rng {
    /// Uniform in `[0, 1)`.
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next()
    }
}

/// `samples` of test signal from `seed`: segments of 50 to 400 ms, each a logarithmic sine
/// sweep (30 Hz to 8 kHz, up or down) or a burst of noise through a random one-pole low-pass,
/// at a random level between -26 dBFS and -1 dBFS, with 2 ms fades at the joins.
pub fn signal(seed: u64, samples: usize) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(samples);
    let fade = (0.002 * RATE) as usize;
    while out.len() < samples {
        let len = (rng.range(0.05, 0.4) * RATE) as usize;
        let level = 10f32.powf(rng.range(-26.0, -1.0) / 20.0);
        let sweep = rng.next() < 0.6;
        let (f0, f1) = (
            30f32 * 266f32.powf(rng.next()),
            30f32 * 266f32.powf(rng.next()),
        );
        let smooth = rng.range(0.02, 1.0);
        let (mut phase, mut noise) = (0f32, 0f32);
        for n in 0..len {
            let t = n as f32 / len as f32;
            let v = if sweep {
                phase += core::f32::consts::TAU * f0 * (f1 / f0).powf(t) / RATE;
                phase %= core::f32::consts::TAU;
                phase.sin()
            } else {
                noise += smooth * (rng.range(-1.0, 1.0) - noise);
                noise * (1.0 / smooth.sqrt()).min(3.0)
            };
            let edge = (n.min(len - 1 - n) as f32 / fade as f32).min(1.0);
            out.push((level * edge * v).clamp(-1.0, 1.0));
        }
    }
    out.truncate(samples);
    out
}

/// The effect the network learns, applied to a whole signal from rest.
pub fn effect(x: &[f32]) -> Vec<f32> {
    let a = 1.0 - (-core::f32::consts::TAU * CUTOFF / RATE).exp();
    let offset = (DRIVE * BIAS).tanh();
    let mut lp = 0.0f32;
    x.iter()
        .map(|&x| {
            lp += a * (x - lp);
            (DRIVE * (lp + BIAS)).tanh() - offset
        })
        .collect()
}

/// The error-to-signal ratio of `prediction` against `target`.
pub fn esr(target: &[f32], prediction: &[f32]) -> f64 {
    let (mut err, mut sig) = (0f64, 0f64);
    for (&y, &p) in target.iter().zip(prediction) {
        err += ((y - p) as f64).powi(2);
        sig += (y as f64).powi(2);
    }
    err / sig
}

/// The largest magnitude in `x`.
fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Trains a fresh network on the training signal, calling `report(epoch, mean loss)` after
/// each epoch.
pub fn train(mut report: impl FnMut(usize, f32)) -> Amp {
    let x = signal(TRAIN_SEED, BATCH * SEQUENCE);
    let y = effect(&x);
    let mut net = Amp::seeded(NET_SEED);
    let mut opt = Adam::new(LR);
    // Window `w` of sequence `b` is samples `b * SEQUENCE + w * WINDOW ..` of the signal;
    // step `t` of a window is one column per sequence.
    let column = |s: &[f32], w: usize, t: usize| -> SMatrix<f32, 1, BATCH> {
        SMatrix::from_fn(|_, b| s[b * SEQUENCE + w * WINDOW + t])
    };
    let mut xs = vec![SMatrix::<f32, 1, BATCH>::zeros(); WINDOW];
    let mut ys = xs.clone();
    for epoch in 0..EPOCHS {
        let mut state = AmpState::<BATCH>::zeros();
        let mut total = 0.0;
        let windows = SEQUENCE / WINDOW;
        for w in 0..windows {
            for t in 0..WINDOW {
                xs[t] = column(&x, w, t);
                ys[t] = column(&y, w, t);
            }
            total += net.train_sequence(&xs, &ys, &Mse, &mut opt, &mut state);
        }
        report(epoch, total / windows as f32);
    }
    net
}

fn main() -> Result<(), Box<dyn Error>> {
    let start = Instant::now();
    let net = train(|epoch, loss| println!("epoch {epoch}  mean window loss {loss:.3e}"));
    println!("trained in {:.1} s", start.elapsed().as_secs_f32());

    // Held-out audio, one sample at a time from a zero state, as an audio callback runs it.
    let x = signal(TEST_SEED, TEST);
    let y = effect(&x);
    let mut prediction = vec![0.0; TEST];
    let mut state = AmpState::zeros();
    for (input, output) in x.chunks(256).zip(prediction.chunks_mut(256)) {
        net.process_block(input, output, &mut state);
    }
    let error = esr(&y[WARM_UP..], &prediction[WARM_UP..]);
    println!("ESR: {error:.4}");
    println!(
        "  (for scale: a wire, y_hat = x, has an ESR of {:.2} on the same audio)",
        esr(&y[WARM_UP..], &x[WARM_UP..])
    );

    if error >= GOOD_ESR {
        return Err(format!("the ESR {error:.4} is not below {GOOD_ESR}").into());
    }

    // Streaming speed: a few seconds of audio in blocks of 128 samples.
    let audio = signal(TEST_SEED + 1, 5 * RATE as usize);
    let mut out = vec![0.0; audio.len()];
    let mut state = AmpState::zeros();
    let start = Instant::now();
    for (input, output) in audio.chunks(128).zip(out.chunks_mut(128)) {
        net.process_block(input, output, &mut state);
    }
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(&out);
    let rate = audio.len() as f64 / seconds;
    println!(
        "streaming inference: {:.1} ns per sample, real-time factor: {:.0} x",
        1e9 / rate,
        rate / RATE as f64
    );

    std::fs::create_dir_all(common::output_dir())?;
    let path = common::output_dir().join("amp.png");
    // The excerpt: of the stretches of 25 ms after the warm-up whose every quarter holds a
    // tone below about 1 kHz (the mean step between samples at most 4 kHz / 48 kHz of the
    // peak, which a sine of frequency f has at 4 f / 48 kHz), the one whose quietest quarter
    // is loudest: the saturation shows.
    let len = (0.025 * RATE) as usize;
    let tonal = |s: &[f32]| {
        let roughness = s.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f32>() / s.len() as f32;
        roughness <= 4_000.0 / RATE * peak(s)
    };
    let score = |s: &[f32]| {
        let quarters = s.chunks(s.len() / 4);
        let all = quarters.clone().all(tonal);
        if all {
            quarters.map(peak).fold(f32::MAX, f32::min)
        } else {
            0.0
        }
    };
    let loudest = (WARM_UP..TEST - len)
        .step_by(len / 4)
        .max_by(|&a, &b| score(&x[a..a + len]).total_cmp(&score(&x[b..b + len])))
        .unwrap_or(WARM_UP);
    let excerpt = loudest..loudest + len;
    chart(
        &x[excerpt.clone()],
        &y[excerpt.clone()],
        &prediction[excerpt],
        &path,
    )?;
    println!(
        "input, target and prediction over 25 ms: {}",
        path.display()
    );
    Ok(())
}

/// Draws input, target and prediction over an excerpt into a PNG at `path`.
fn chart(x: &[f32], y: &[f32], prediction: &[f32], path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    common::register_font()?;
    let ms = |n: usize| n as f32 * 1000.0 / RATE;
    let range = x
        .iter()
        .chain(y)
        .chain(prediction)
        .fold(0f32, |m, v| m.max(v.abs()))
        * 1.1;
    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Residual(LSTM(1, 16), Linear(16, 1)) on held-out audio",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(0f32..ms(x.len()), -range..range)?;
    chart
        .configure_mesh()
        .x_desc("time (ms)")
        .y_desc("amplitude")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let series = [
        ("input", x, RGBColor(160, 160, 160), 1),
        ("target (the effect)", y, RGBColor(31, 119, 180), 3),
        ("network", prediction, RGBColor(255, 127, 14), 1),
    ];
    for (name, data, color, width) in series {
        chart
            .draw_series(LineSeries::new(
                data.iter().enumerate().map(|(n, &v)| (ms(n), v)),
                color.stroke_width(width),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    root.present()?;
    Ok(())
}
