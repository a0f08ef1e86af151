//! An online learner inside a control loop: each tick, a small network predicts a nonlinear
//! plant's next output from its recent inputs and outputs, then learns from what the plant
//! actually did, one sample at a time. The loop runs 1,000,000 ticks and reports the
//! prediction error as it learns and the latency of each tick's work (predict + train step):
//! p50, p99 and max. Nothing is allocated inside the loop.
//!
//! Run it with `cargo run --release --example control_loop`.

use std::time::Instant;

use nn_runtime::prelude::*;

network! {
    /// Predicts the plant's next output from its last two outputs and inputs.
    pub struct Model { Linear(4, 16), Tanh, Linear(16, 1) }
}

/// Ticks the loop runs.
const TICKS: usize = 1_000_000;

/// The plant: a first-order system with a saturating actuator and a slow resonance.
struct Plant {
    y: [f32; 2],
    u: [f32; 2],
}

impl Plant {
    /// Applies input `u` and returns the new output.
    fn step(&mut self, u: f32) -> f32 {
        let y = 0.85 * self.y[0] - 0.1 * self.y[1] + 0.4 * u.tanh() + 0.05 * self.u[1];
        self.y = [y, self.y[0]];
        self.u = [u, self.u[0]];
        y
    }

    /// What the model sees before the tick: last two outputs and inputs, with the input about
    /// to be applied.
    fn features(&self, u: f32) -> SVector<f32, 4> {
        SVector::from([self.y[0], self.y[1], u, self.u[0]])
    }
}

/// A deterministic excitation signal: a sum of slow sines with a square-wave component.
fn command(t: usize) -> f32 {
    let t = t as f32 * 1e-3;
    (1.3 * t).sin() + 0.5 * (7.1 * t).sin() + if (t * 0.37).fract() < 0.5 { 0.6 } else { -0.6 }
}

fn main() {
    let mut model = Model::seeded(7);
    let mut opt = Sgd::new(1e-2);
    let mut plant = Plant {
        y: [0.0; 2],
        u: [0.0; 2],
    };
    let mut latencies = vec![0u32; TICKS]; // nanoseconds per tick, allocated before the loop
    let mut error_sum = 0.0f64;
    println!("tick        mean |prediction error| over the last 100k ticks");
    for (t, latency) in latencies.iter_mut().enumerate() {
        let u = command(t);
        let x = plant.features(u);
        let start = Instant::now();
        // The tick's work: predict, then (once the plant has answered) learn from the answer.
        let predicted = model.forward(&x)[0];
        let actual = plant.step(u);
        model.train_step(&x, &SVector::from([actual]), &Mse, &mut opt);
        *latency = start.elapsed().as_nanos().min(u32::MAX as u128) as u32;
        error_sum += (predicted - actual).abs() as f64;
        if (t + 1) % 100_000 == 0 {
            println!("{:>7}     {:.5}", t + 1, error_sum / 100_000.0);
            error_sum = 0.0;
        }
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((TICKS - 1) as f64 * q) as usize];
    println!(
        "\nper-tick latency (predict + train step), {TICKS} ticks: p50 {} ns, p99 {} ns, max {} ns",
        at(0.5),
        at(0.99),
        latencies[TICKS - 1]
    );
    println!(
        "cost per tick: {} flops forward + {} flops training, {} bytes of parameters",
        Model::FLOPS_FORWARD,
        Model::FLOPS_TRAIN,
        Model::PARAM_BYTES
    );
}
