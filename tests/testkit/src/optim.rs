//! Our optimizers built from a `torch.optim` class name and its keyword arguments, as the
//! fixtures of `tests/fixtures/` state them.

use crate::fixtures::{list, number};
use nn_runtime::{Adam, AdamW, Optimizer, Real, RmsProp, Sgd};
use serde_json::{Map, Value};

/// Our optimizer for the `torch.optim` class `class` (`SGD`, `Adam`, `AdamW`, `RMSprop`) with
/// the keyword arguments `args`, built through the public builders. `what` names the fixture or
/// configuration in panic messages.
///
/// Panics on an unknown class and on any argument it does not pass on: an argument left out
/// would make a comparison with torch meaningless. Only the arguments torch was given are set,
/// so torch's defaults are checked as well.
pub fn from_torch<T: Real>(
    what: &str,
    class: &str,
    args: &Map<String, Value>,
) -> Box<dyn Optimizer<T>> {
    let known: &[&str] = match class {
        "SGD" => &["lr", "momentum", "dampening", "nesterov", "weight_decay"],
        "Adam" | "AdamW" => &["lr", "betas", "eps", "weight_decay"],
        "RMSprop" => &["lr", "alpha", "eps", "weight_decay", "momentum", "centered"],
        other => panic!("{what}: unknown optimizer class {other}"),
    };
    for key in args.keys() {
        assert!(
            known.contains(&key.as_str()),
            "{what}: {class} argument {key} is not passed on"
        );
    }
    let num = |key: &str| args.get(key).map(|v| T::cast(number(v, key)));
    let flag = |key: &str| {
        args.get(key).map(|v| {
            v.as_bool()
                .unwrap_or_else(|| panic!("{what}: {key} = {v} is not a bool"))
        })
    };
    let betas = || {
        args.get("betas").map(|v| {
            let b = list(v, "betas", 2);
            (
                T::cast(number(&b[0], "betas")),
                T::cast(number(&b[1], "betas")),
            )
        })
    };
    let lr = num("lr").unwrap_or_else(|| panic!("{what}: no lr"));
    // Adam and AdamW take the same arguments through builders of the same names.
    macro_rules! adam_like {
        ($new:expr) => {{
            let mut opt = $new;
            if let Some((b1, b2)) = betas() {
                opt = opt.betas(b1, b2);
            }
            if let Some(eps) = num("eps") {
                opt = opt.eps(eps);
            }
            if let Some(wd) = num("weight_decay") {
                opt = opt.weight_decay(wd);
            }
            Box::new(opt)
        }};
    }
    match class {
        "SGD" => {
            let mut opt = Sgd::new(lr);
            // Momentum before Nesterov: the builder checks Nesterov against the momentum set.
            if let Some(m) = num("momentum") {
                opt = opt.momentum(m);
            }
            if let Some(d) = num("dampening") {
                opt = opt.dampening(d);
            }
            if let Some(n) = flag("nesterov") {
                opt = opt.nesterov(n);
            }
            if let Some(wd) = num("weight_decay") {
                opt = opt.weight_decay(wd);
            }
            Box::new(opt)
        }
        "Adam" => adam_like!(Adam::new(lr)),
        "AdamW" => adam_like!(AdamW::new(lr)),
        "RMSprop" => {
            let mut opt = RmsProp::new(lr);
            if let Some(a) = num("alpha") {
                opt = opt.alpha(a);
            }
            if let Some(eps) = num("eps") {
                opt = opt.eps(eps);
            }
            if let Some(wd) = num("weight_decay") {
                opt = opt.weight_decay(wd);
            }
            if let Some(m) = num("momentum") {
                opt = opt.momentum(m);
            }
            if let Some(c) = flag("centered") {
                opt = opt.centered(c);
            }
            Box::new(opt)
        }
        other => unreachable!("{other} was rejected above"),
    }
}
