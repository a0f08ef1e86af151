//! Parity of the optimizers with `torch.optim`, and their allocation-free steady state.
//!
//! Every `tests/fixtures/optim/*.json` (written by `scripts/make_optim_fixtures.py`) holds a
//! few parameter tensors, the gradients torch was fed over five steps and the parameters after
//! each step. We build the same optimizer through our builders (only the arguments the fixture
//! gave torch, so torch's defaults are checked too), replay the gradients, and compare every
//! parameter after every step. Tensors are flat row-major lists; the rules are elementwise, so
//! they are used as flat slices as they are.

use approx::relative_eq;
use nn_runtime::{Adam, AdamW, Optimizer, Real, RmsProp, Sgd};
use nn_testkit::fixtures::{fixture_dir, tensors};
use nn_testkit::optim::from_torch;
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

/// Fixtures that must exist: a missing or renamed file fails the test instead of shrinking it.
const REQUIRED: &[&str] = &[
    "sgd_plain",
    "sgd_momentum_nesterov_wd",
    "sgd_momentum_dampening",
    "adam_default",
    "adam_betas_eps_wd",
    "adamw_default",
    "adamw_decay",
    "rmsprop_default",
    "rmsprop_momentum_centered_wd",
    "sgd_momentum_nesterov_wd_f64",
    "adam_betas_eps_wd_f64",
];

/// Relative tolerance per dtype; the absolute floor only matters for parameters near zero.
const F32_MAX_RELATIVE: f64 = 1e-5;
const F32_EPSILON: f64 = 1e-7;
const F64_MAX_RELATIVE: f64 = 1e-10;
const F64_EPSILON: f64 = 1e-12;

/// Replays one fixture at precision `T`; returns the mismatches and the largest relative error.
fn replay<T: Real>(fixture: &Value, max_relative: f64, epsilon: f64) -> (Vec<String>, f64) {
    let name = fixture["name"].as_str().expect("name");
    let optimizer = fixture["optimizer"].as_str().expect("optimizer");
    let args = fixture["args"].as_object().expect("args");
    let mut opt = from_torch::<T>(name, optimizer, args);
    let mut params = tensors::<T>(&fixture["initial"], "initial");
    let shapes = fixture["shapes"].as_array().expect("shapes");
    assert_eq!(shapes.len(), params.len(), "{name}: one shape per tensor");
    for (shape, p) in shapes.iter().zip(&params) {
        let numel: u64 = shape
            .as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().unwrap())
            .product();
        assert_eq!(
            numel as usize,
            p.len(),
            "{name}: shape {shape} vs {} values",
            p.len()
        );
    }
    let steps = fixture["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "{name}: no steps");
    let mut mismatches = Vec::new();
    let mut worst = 0.0f64;
    for (step, record) in steps.iter().enumerate() {
        let grads = tensors::<T>(&record["grads"], "grads");
        let expected = tensors::<T>(&record["params"], "params");
        let grad_views: Vec<&[T]> = grads.iter().map(Vec::as_slice).collect();
        let mut param_views: Vec<&mut [T]> = params.iter_mut().map(Vec::as_mut_slice).collect();
        opt.step(&mut param_views, &grad_views);
        for (tensor, (ours, torch)) in params.iter().zip(&expected).enumerate() {
            assert_eq!(ours.len(), torch.len(), "{name}: tensor {tensor} length");
            for (i, (&a, &b)) in ours.iter().zip(torch).enumerate() {
                let (a, b) = (a.widen(), b.widen());
                worst = worst.max((a - b).abs() / a.abs().max(b.abs()).max(epsilon));
                if !relative_eq!(a, b, epsilon = epsilon, max_relative = max_relative) {
                    mismatches.push(format!(
                        "{name}: step {} tensor {tensor} element {i}: ours {a:e}, torch {b:e}",
                        step + 1
                    ));
                }
            }
        }
    }
    (mismatches, worst)
}

#[test]
fn optimizers_match_torch_fixtures() {
    let dir = fixture_dir("optim");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/make_optim_fixtures.py)",
                dir.display()
            )
        })
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let stems: Vec<String> = paths
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in REQUIRED {
        assert!(
            stems.iter().any(|s| s == required),
            "missing fixture {required}.json in {}",
            dir.display()
        );
    }
    assert!(
        paths.len() >= 11,
        "expected at least 11 optimizer fixtures, found {}",
        paths.len()
    );

    let mut mismatches = Vec::new();
    for path in &paths {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let fixture: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().unwrap().to_string_lossy();
        assert_eq!(
            fixture["name"].as_str(),
            Some(&*stem),
            "{}: name differs from file",
            path.display()
        );
        let (found, worst) = match fixture["dtype"].as_str() {
            Some("float32") => replay::<f32>(&fixture, F32_MAX_RELATIVE, F32_EPSILON),
            Some("float64") => replay::<f64>(&fixture, F64_MAX_RELATIVE, F64_EPSILON),
            other => panic!("{}: unknown dtype {other:?}", path.display()),
        };
        eprintln!("{stem}: largest relative error {worst:.2e}");
        mismatches.extend(found);
    }
    assert!(
        mismatches.is_empty(),
        "{} parameters differ from torch; first ones:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Allocation: a counting allocator proves steps after the first allocate nothing.
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Allocations made by this thread; per thread, so tests running in parallel do not count
    /// each other's.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

struct CountingAllocator;

// SAFETY: forwards every call unchanged to the system allocator; counting has no effect on it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours; `ptr` came from `System`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as ours; `ptr` came from `System`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations made by steps 2 to 11 of `opt` on a small two-tensor network.
fn steady_state_allocations<O: Optimizer<f32>>(mut opt: O) -> usize {
    let mut weight = [0.5f32, -1.0, 2.0, 0.25, -0.75, 1.5];
    let mut bias = [0.1f32, -0.2];
    let gw = [0.1f32, -0.2, 0.3, -0.4, 0.5, -0.6];
    let gb = [1.0f32, -1.0];
    opt.step(&mut [&mut weight, &mut bias], &[&gw, &gb]);
    let before = allocations();
    for _ in 0..10 {
        opt.step(&mut [&mut weight, &mut bias], &[&gw, &gb]);
    }
    allocations() - before
}

#[test]
fn steps_after_the_first_do_not_allocate() {
    // The counter works: the first step of a stateful optimizer allocates its state.
    let before = allocations();
    let mut p = [1.0f32];
    Adam::new(0.1f32).step(&mut [&mut p], &[&[1.0]]);
    assert!(
        allocations() > before,
        "the counting allocator saw no allocation"
    );

    assert_eq!(steady_state_allocations(Sgd::new(0.1)), 0, "Sgd");
    let sgd = Sgd::new(0.1)
        .momentum(0.9)
        .nesterov(true)
        .weight_decay(1e-2);
    assert_eq!(steady_state_allocations(sgd), 0, "Sgd with momentum");
    assert_eq!(
        steady_state_allocations(Adam::new(1e-3).weight_decay(1e-2)),
        0,
        "Adam"
    );
    assert_eq!(steady_state_allocations(AdamW::new(1e-3)), 0, "AdamW");
    let rms = RmsProp::new(1e-2)
        .momentum(0.5)
        .centered(true)
        .weight_decay(1e-2);
    assert_eq!(steady_state_allocations(rms), 0, "RmsProp");
}
