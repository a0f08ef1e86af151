//! The digits example as a test: the same code as `examples/digits.rs`, with its seed and
//! epochs, reaches the accuracy the example promises; and the CSV loader the data examples share
//! reads the shipped files and reports bad ones instead of panicking.

#[path = "../examples/digits.rs"]
#[allow(dead_code)]
mod digits;

#[test]
fn digits_reach_96_percent() {
    let outcome = digits::run(digits::EPOCHS, false).unwrap();
    assert_eq!(outcome.sizes, (1437, 360));
    assert_eq!(outcome.history.test_accuracy.len(), digits::EPOCHS);
    println!(
        "digits: test accuracy {:.2} %",
        100.0 * outcome.test_accuracy
    );
    assert!(
        outcome.test_accuracy >= 0.96,
        "test accuracy {}",
        outcome.test_accuracy
    );
    // Training lowered the loss.
    let loss = &outcome.history.train_loss;
    assert!(loss[loss.len() - 1] < loss[0] / 10.0, "{loss:?}");
}

#[test]
fn the_shipped_files_read_as_their_readme_says() {
    let digits = digits::common::load("digits.csv.gz").unwrap();
    assert_eq!((digits.rows.len(), digits.rows[0].len()), (1797, 64));
    assert!(digits.labels.iter().all(|&l| l < 10));
    assert!(
        digits
            .rows
            .iter()
            .flatten()
            .all(|&p| (0.0..=16.0).contains(&p))
    );
    let iris = digits::common::load("iris.csv").unwrap();
    assert_eq!((iris.rows.len(), iris.rows[0].len()), (150, 4));
    let cancer = digits::common::load("breast_cancer.csv").unwrap();
    assert_eq!((cancer.rows.len(), cancer.rows[0].len()), (569, 30));
    assert_eq!(cancer.class_names, ["malignant", "benign"]);
}

#[test]
fn bad_csv_is_an_error_naming_the_line() {
    use digits::common::parse;
    let err = |text: &str| parse(text).err().unwrap();
    assert_eq!(err("1,2,0\n1,x,1\n"), "line 2: \"x\" is not a number");
    assert_eq!(
        err("1,2,0\n1,2,3,1\n"),
        "line 2: 3 features, but the first row has 2"
    );
    assert_eq!(
        err("1,2,0.5\n"),
        "line 1: label \"0.5\" is not a class index"
    );
    assert_eq!(
        err("3,2,a,b\n1,2,0\n"),
        "the header promises 3 rows of 2 features, the file has 1 of 2"
    );
    assert!(
        digits::common::load("no-such-file.csv")
            .unwrap_err()
            .to_string()
            .contains("cannot read")
    );
}
