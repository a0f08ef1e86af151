//! Central finite differences of whole networks' gradients, by `state_dict` name: what the
//! shaped, normalised, dropout and sequence networks' gradient checks (`tests/*_fd.rs`) share.
//! The tolerances are those of `tests/gradcheck.rs`, whose reasoning they follow.

use nn_runtime::Tensors;

use crate::fixtures::{Named, element, named_tensors};

/// Step of the central difference (see `tests/gradcheck.rs`).
pub const H: f64 = 1e-6;

/// Absolute tolerance per unit of loss, as in `tests/gradcheck.rs`.
pub const EPSILON: f64 = 1e-8;

/// Relative tolerance, as in `tests/gradcheck.rs`.
pub const MAX_RELATIVE: f64 = 1e-6;

/// One analytic entry that disagrees with its central difference.
#[derive(Debug)]
pub struct Mismatch {
    /// The entry, e.g. `1.weight[(0, 2)]`.
    pub what: String,
    /// The gradient the network computed.
    pub analytic: f64,
    /// The central difference.
    pub numeric: f64,
}

/// The outcome of one network's check.
#[derive(Debug, Default)]
pub struct Report {
    /// Entries compared.
    pub checked: usize,
    /// The largest error as a fraction of its tolerance.
    pub worst_fraction: f64,
    /// The entries that disagree.
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    /// Compares an analytic entry with the central difference of `loss_up` and `loss_down`
    /// taken at `value + H` and `value - H`.
    pub fn entry(
        &mut self,
        what: String,
        analytic: f64,
        up: f64,
        down: f64,
        losses: (f64, f64),
        loss: f64,
    ) {
        // The step actually taken is `up - down` as rounded, not exactly `2 H`.
        let numeric = (losses.0 - losses.1) / (up - down);
        let epsilon = EPSILON * loss.abs().max(1.0);
        let err = (analytic - numeric).abs();
        let allowed = epsilon.max(MAX_RELATIVE * analytic.abs().max(numeric.abs()));
        self.checked += 1;
        self.worst_fraction = self.worst_fraction.max(err / allowed);
        let ok = analytic.is_finite()
            && approx::relative_eq!(
                analytic,
                numeric,
                epsilon = epsilon,
                max_relative = MAX_RELATIVE
            );
        if !ok {
            self.mismatches.push(Mismatch {
                what,
                analytic,
                numeric,
            });
        }
    }

    /// Prints the worst fraction of the tolerance used and fails on a count other than
    /// `expected` or on any mismatch.
    pub fn assert(&self, what: &str, expected: usize) {
        println!(
            "{what}: {} entries, worst {:.3} of the tolerance",
            self.checked, self.worst_fraction
        );
        assert_eq!(self.checked, expected, "{what}: entries checked");
        let listing: String = self
            .mismatches
            .iter()
            .map(|m| {
                format!(
                    "  {}: analytic {:e}, numeric {:e}, ratio {}\n",
                    m.what,
                    m.analytic,
                    m.numeric,
                    m.analytic / m.numeric
                )
            })
            .collect();
        assert!(
            self.mismatches.is_empty(),
            "{what}: {} of {} entries disagree with central differences \
             (epsilon {EPSILON:e} x max(1, |loss|), max_relative {MAX_RELATIVE:e}):\n{listing}",
            self.mismatches.len(),
            self.checked
        );
    }
}

/// Sets element `i` of tensor number `t` (in `visit` order) of `net` to `value`; returns the
/// value it had.
pub fn set_scalar<N: Tensors<f64>>(net: &mut N, t: usize, i: usize, value: f64) -> f64 {
    let mut at = 0;
    let mut old = f64::NAN;
    net.visit_mut("", &mut |_, _, data| {
        if at == t {
            old = data[i];
            data[i] = value;
        }
        at += 1;
    });
    old
}

/// Checks every parameter of `net`: `loss(net)` is the independent loss, `analytic` the
/// gradients by name.
pub fn check_params<N: Tensors<f64> + Clone>(
    report: &mut Report,
    net: &N,
    loss: impl Fn(&N) -> f64,
    analytic: &[Named<f64>],
) {
    let at = loss(net);
    let params = named_tensors(net);
    assert_eq!(params.len(), analytic.len(), "tensors and gradients");
    let mut probe = net.clone();
    for (t, (param, grad)) in params.iter().zip(analytic).enumerate() {
        assert_eq!(param.name, grad.name, "gradient order");
        assert_eq!(
            param.values.len(),
            grad.values.len(),
            "{}: size",
            param.name
        );
        for (i, (&original, &a)) in param.values.iter().zip(&grad.values).enumerate() {
            let (up, down) = (original + H, original - H);
            set_scalar(&mut probe, t, i, up);
            let loss_up = loss(&probe);
            set_scalar(&mut probe, t, i, down);
            let loss_down = loss(&probe);
            set_scalar(&mut probe, t, i, original);
            let what = format!("{}{}", param.name, element(&param.shape, i));
            report.entry(what, a, up, down, (loss_up, loss_down), at);
        }
    }
    assert_eq!(named_tensors(&probe), params, "the probe was restored");
}
