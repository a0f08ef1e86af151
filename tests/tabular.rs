//! The tabular example as a test: the same code as `examples/tabular.rs`, with its seed and
//! epochs, reaches the accuracy the example promises on iris and on breast cancer.

#[path = "../examples/tabular.rs"]
#[allow(dead_code)]
mod tabular;

use tabular::Set;

#[test]
fn iris_reaches_93_percent() {
    let outcome = tabular::run(Set::Iris, None, false).unwrap();
    assert_eq!(outcome.sizes, (120, 30));
    assert_eq!(outcome.classes, ["setosa", "versicolor", "virginica"]);
    println!("iris: test accuracy {:.2} %", 100.0 * outcome.test_accuracy);
    assert!(outcome.test_accuracy >= Set::Iris.target());
}

#[test]
fn breast_cancer_reaches_95_percent() {
    let outcome = tabular::run(Set::BreastCancer, None, false).unwrap();
    assert_eq!(outcome.sizes, (455, 114));
    println!(
        "breast_cancer: test accuracy {:.2} %",
        100.0 * outcome.test_accuracy
    );
    assert!(outcome.test_accuracy >= Set::BreastCancer.target());
}
