//! What the examples beside this crate (`digits.rs`, `digits_conv.rs`, `tabular.rs`, `amp.rs`)
//! share: reading the CSV files of `examples/data/`, a training loop with a progress bar per
//! epoch, a PNG chart of the training history, and for the two digits examples a digit drawn
//! in text and a PNG gallery of digits with what a network read in them.

use indicatif::{ProgressBar, ProgressStyle};
use nn_runtime::data::Dataset;
use nn_runtime::prelude::*;
use std::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A labelled data set as read from a CSV file: one row of features per sample.
#[derive(Clone, Debug)]
pub struct Table {
    /// The features, one row per sample.
    pub rows: Vec<Vec<f32>>,
    /// Each sample's class index.
    pub labels: Vec<usize>,
    /// The classes' names, where the file has them.
    pub class_names: Vec<String>,
}

/// The path of a file in `examples/data/` (this package's directory), so the examples run
/// from any working directory.
pub fn data_path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
}

/// Where the examples write what they make (charts, weights): the workspace's `target/`.
pub fn output_dir() -> PathBuf {
    // This package is examples/data/ of the workspace.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
    workspace
        .expect("examples/data/ lies two folders below the workspace")
        .join("target")
}

/// Reads `examples/data/<file>`: gzip-compressed if it ends in `.gz`. Every line holds the
/// features and then the class index, comma-separated. A first line whose third field is not a
/// number is a header, `rows,features,class names...`, and is checked against the data.
pub fn load(file: &str) -> Result<Table, Box<dyn Error>> {
    let path = data_path(file);
    let raw = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = if file.ends_with(".gz") {
        let mut text = String::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: not valid gzip-compressed text: {e}", path.display()))?;
        text
    } else {
        String::from_utf8(raw).map_err(|e| format!("{}: not UTF-8: {e}", path.display()))?
    };
    parse(&text).map_err(|e| format!("{}: {e}", path.display()).into())
}

/// Parses the CSV layout described at [`load`].
pub fn parse(text: &str) -> Result<Table, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let mut header = None;
    if let Some((_, first)) = lines.peek() {
        let fields: Vec<&str> = first.split(',').map(str::trim).collect();
        if fields.len() >= 3 && fields[2].parse::<f64>().is_err() {
            let count = |i: usize| {
                fields[i]
                    .parse::<usize>()
                    .map_err(|_| format!("line 1: header field {} is not a count", i + 1))
            };
            header = Some((
                count(0)?,
                count(1)?,
                fields[2..].iter().map(|s| s.to_string()).collect(),
            ));
            lines.next();
        }
    }
    let mut table = Table {
        rows: Vec::new(),
        labels: Vec::new(),
        class_names: Vec::new(),
    };
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let (label, features) = fields
            .split_last()
            .ok_or(format!("line {}: empty", i + 1))?;
        let label = label
            .parse::<usize>()
            .map_err(|_| format!("line {}: label {label:?} is not a class index", i + 1))?;
        let row = features
            .iter()
            .map(|f| {
                f.parse::<f32>()
                    .map_err(|_| format!("line {}: {f:?} is not a number", i + 1))
            })
            .collect::<Result<Vec<f32>, String>>()?;
        if let Some(first) = table.rows.first()
            && first.len() != row.len()
        {
            return Err(format!(
                "line {}: {} features, but the first row has {}",
                i + 1,
                row.len(),
                first.len()
            ));
        }
        table.rows.push(row);
        table.labels.push(label);
    }
    if let Some((rows, features, names)) = header {
        let found_features = table.rows.first().map_or(0, Vec::len);
        if rows != table.rows.len() || features != found_features {
            return Err(format!(
                "the header promises {rows} rows of {features} features, the file has {} of {found_features}",
                table.rows.len()
            ));
        }
        table.class_names = names;
    }
    Ok(table)
}

/// Loss and accuracy per epoch.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Mean training loss over each epoch's batches (the loss before each update).
    pub train_loss: Vec<f32>,
    /// Accuracy on the training set after each epoch.
    pub train_accuracy: Vec<f64>,
    /// Accuracy on the test set after each epoch.
    pub test_accuracy: Vec<f64>,
}

/// Trains `net` for `epochs` epochs of shuffled minibatches of `B` with cross-entropy, then
/// measures train and test accuracy after each epoch. `step` is one training step (e.g.
/// `|net, xs, ys| net.train_step(xs, ys, &CrossEntropy, &mut opt)`) and `predict` the batch
/// forward pass: a network's batch methods are inherent, so generic code is handed them. With
/// `progress`, shows a progress bar per epoch (or a line per epoch when not on a terminal).
#[allow(clippy::too_many_arguments)]
pub fn fit<N, const IN: usize, const OUT: usize, const B: usize>(
    net: &mut N,
    train: &Dataset<f32, IN, OUT>,
    test: &Dataset<f32, IN, OUT>,
    epochs: usize,
    seed: u64,
    progress: bool,
    mut step: impl FnMut(&mut N, &SMatrix<f32, IN, B>, &SMatrix<f32, OUT, B>) -> f32,
    mut predict: impl FnMut(&N, &SMatrix<f32, IN, B>) -> SMatrix<f32, OUT, B>,
) -> History {
    let mut history = History::default();
    let style =
        ProgressStyle::with_template("epoch {prefix:>3} [{bar:30}] {pos:>3}/{len} batches  {msg}")
            .expect("a valid template")
            .progress_chars("=> ");
    let width = epochs.to_string().len();
    for epoch in 0..epochs {
        let batches = train
            .batches::<B>()
            .shuffled(seed.wrapping_add(epoch as u64));
        let bar = if progress {
            ProgressBar::new(batches.len() as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(style.clone());
        bar.set_prefix(format!("{:>width$}/{epochs}", epoch + 1));
        let (mut total, mut count) = (0.0f32, 0usize);
        for batch in batches {
            total += step(net, &batch.xs, &batch.ys);
            count += 1;
            bar.set_message(format!("loss {:.4}", total / count as f32));
            bar.inc(1);
        }
        let loss = total / count.max(1) as f32;
        let mut accuracy = |data: &Dataset<f32, IN, OUT>| {
            data.evaluate::<B, _>(&CrossEntropy, |xs| predict(net, xs))
                .accuracy
                .unwrap_or(0.0)
        };
        let (train_acc, test_acc) = (accuracy(train), accuracy(test));
        let summary = format!(
            "loss {loss:.4}  train acc {:5.1}%  test acc {:5.1}%",
            100.0 * train_acc,
            100.0 * test_acc
        );
        if progress && bar.is_hidden() {
            // Not a terminal (a CI log, a pipe): a plain line per epoch instead.
            println!("epoch {:>width$}/{epochs}  {summary}", epoch + 1);
        }
        bar.finish_with_message(summary);
        history.train_loss.push(loss);
        history.train_accuracy.push(train_acc);
        history.test_accuracy.push(test_acc);
    }
    history
}

/// Registers the font embedded in the binary (Hack, from `epaint_default_fonts`) as
/// plotters' `"sans-serif"`, so that charts need no system font. Registering twice is
/// harmless; a font the library cannot parse is an error, not a panic.
pub fn register_font() -> Result<(), Box<dyn Error>> {
    use plotters::style::FontStyle;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        epaint_default_fonts::HACK_REGULAR,
    )
    .map_err(|_| "the embedded font could not be loaded".into())
}

/// Draws training loss (left axis) and test accuracy (right axis) per epoch into a PNG at
/// `path`. Text uses a font embedded in the binary (Hack, from `epaint_default_fonts`), so no
/// system font is needed.
pub fn chart(history: &History, title: &str, path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    register_font()?;

    let epochs = history.train_loss.len();
    let max_loss = history.train_loss.iter().copied().fold(0.0f32, f32::max) * 1.05;
    let min_acc = history
        .test_accuracy
        .iter()
        .copied()
        .fold(1.0f64, f64::min)
        .min(0.9);
    let min_acc = (min_acc * 100.0 / 5.0).floor() * 5.0;

    let root = BitMapBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .right_y_label_area_size(64)
        .build_cartesian_2d(1f32..epochs.max(2) as f32, 0f32..max_loss.max(1e-3))?
        .set_secondary_coord(1f32..epochs.max(2) as f32, min_acc..100.0);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("training loss (cross-entropy)")
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("test accuracy (%)")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;

    let blue = RGBColor(31, 119, 180);
    let orange = RGBColor(255, 127, 14);
    chart
        .draw_series(LineSeries::new(
            history
                .train_loss
                .iter()
                .enumerate()
                .map(|(e, &l)| ((e + 1) as f32, l)),
            blue.stroke_width(3),
        ))?
        .label("training loss")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], blue.stroke_width(3)));
    chart
        .draw_secondary_series(LineSeries::new(
            history
                .test_accuracy
                .iter()
                .enumerate()
                .map(|(e, &a)| ((e + 1) as f32, 100.0 * a)),
            orange.stroke_width(3),
        ))?
        .label("test accuracy")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], orange.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    root.present()?;
    Ok(())
}

/// An 8x8 digit of `examples/data/digits.csv.gz` (64 pixels, row by row, 0..16) as 8 lines of
/// text: blank, `.`, `+` or `#` by how dark each pixel is.
pub fn ascii_digit(pixels: &[f32]) -> Vec<String> {
    pixels
        .chunks(8)
        .map(|row| {
            row.iter()
                .map(|&p| match p as u32 {
                    0..=3 => ' ',
                    4..=8 => '.',
                    9..=12 => '+',
                    _ => '#',
                })
                .collect()
        })
        .collect()
}

/// A digit to draw in a [`digit_gallery`]: its 64 raw pixels (0..16), its label, and what a
/// network read in it.
#[derive(Clone, Debug)]
pub struct Reading {
    /// The 8x8 image, row by row, as in the data set (0 white, 16 black).
    pub pixels: Vec<f32>,
    /// The true digit.
    pub label: usize,
    /// The network's answer.
    pub guess: usize,
}

/// Draws `digits` side by side into a PNG at `path`, each 8x8 image in grey levels under a
/// caption `label 3, read 8` (red where the two differ), with `title` above; a gallery with no
/// digit says so. The font is the embedded one, as in [`chart`].
pub fn digit_gallery(digits: &[Reading], title: &str, path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    register_font()?;

    const CELL: u32 = 150;
    let columns = digits.len().clamp(1, 6);
    let rows = digits.len().div_ceil(columns).max(1);
    // Wide enough for a title of about 50 characters however few digits there are.
    let size = (
        (columns as u32 * CELL).max(600),
        rows as u32 * (CELL + 24) + 48,
    );
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    if digits.is_empty() {
        root.draw_text(
            "(none)",
            &("sans-serif", 18).into_text_style(&root),
            (16, 16),
        )?;
    }
    let cells = root.split_evenly((rows, (size.0 / CELL) as usize));
    for (cell, digit) in cells.iter().zip(digits) {
        let color = if digit.label == digit.guess {
            BLACK
        } else {
            RED
        };
        let caption = format!("label {}, read {}", digit.label, digit.guess);
        cell.draw_text(
            &caption,
            &("sans-serif", 15).into_text_style(cell).color(&color),
            (8, 4),
        )?;
        let pixel = (CELL as i32 - 32) / 8;
        for (i, &p) in digit.pixels.iter().enumerate() {
            let (y, x) = ((i / 8) as i32, (i % 8) as i32);
            let level = 255 - (p.clamp(0.0, 16.0) * 255.0 / 16.0).round() as u8;
            let top_left = (16 + x * pixel, 26 + y * pixel);
            let bottom_right = (top_left.0 + pixel, top_left.1 + pixel);
            cell.draw(&Rectangle::new(
                [top_left, bottom_right],
                RGBColor(level, level, level).filled(),
            ))?;
        }
        let frame = [(15, 25), (17 + 8 * pixel, 27 + 8 * pixel)];
        cell.draw(&Rectangle::new(frame, BLACK.mix(0.3)))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Reading, ascii_digit, digit_gallery, load, parse};

    #[test]
    fn the_shipped_files_read_as_their_readme_says() {
        let digits = load("digits.csv.gz").unwrap();
        assert_eq!((digits.rows.len(), digits.rows[0].len()), (1797, 64));
        assert!(digits.labels.iter().all(|&l| l < 10));
        assert!(
            digits
                .rows
                .iter()
                .flatten()
                .all(|&p| (0.0..=16.0).contains(&p))
        );
        let iris = load("iris.csv").unwrap();
        assert_eq!((iris.rows.len(), iris.rows[0].len()), (150, 4));
        let cancer = load("breast_cancer.csv").unwrap();
        assert_eq!((cancer.rows.len(), cancer.rows[0].len()), (569, 30));
        assert_eq!(cancer.class_names, ["malignant", "benign"]);
    }

    #[test]
    fn bad_csv_is_an_error_naming_the_line() {
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
            load("no-such-file.csv")
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }

    #[test]
    fn digits_draw_as_text_and_as_a_gallery() {
        let digits = load("digits.csv.gz").unwrap();
        let lines = ascii_digit(&digits.rows[0]);
        assert_eq!(lines.len(), 8);
        assert!(lines.iter().all(|l| l.chars().count() == 8));
        let dir = std::env::temp_dir().join(format!("nn-gallery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let readings: Vec<Reading> = (0..7)
            .map(|i| Reading {
                pixels: digits.rows[i].clone(),
                label: digits.labels[i],
                guess: (digits.labels[i] + i % 2) % 10,
            })
            .collect();
        for n in [0, 2, 7] {
            let path = dir.join(format!("{n}.png"));
            digit_gallery(&readings[..n], "a gallery", &path).unwrap();
            let png = std::fs::read(&path).unwrap();
            assert_eq!(&png[1..4], b"PNG", "{n} digits");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
