//! Results as rows of one table: every benchmark prints its figures as `RESULT|…` lines, and
//! `bench/run all` gathers them into one table (figure, value, target, pass/fail).

/// Prints one row. `pass` is None for a figure without a target.
pub fn row(figure: &str, value: impl std::fmt::Display, target: &str, pass: Option<bool>) {
    let verdict = match pass {
        None => "",
        Some(true) => "pass",
        Some(false) => "FAIL",
    };
    println!("RESULT|{figure}|{value}|{target}|{verdict}");
}

/// The median of a few measurements.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
