//! Whether a series grows: its least-squares slope within the stretches between kills, and
//! how much it may rise over the run and still be flat.

use crate::common::report;

/// Samples of one series: (seconds since the start, value).
pub(crate) type Series = Vec<(f64, f64)>;

/// The stretches of the run a trend is judged in: from `warm_up` after the start, and from
/// `settle` after each kill, to the next kill or the `end`. A kill moves work between the
/// replicas (the leader's passes, the events' deliveries, half the clients' connections): a
/// step in their memory and sockets, not a trend.
pub(crate) fn periods(end: f64, warm_up: f64, settle: f64, kills: &[f64]) -> Vec<(f64, f64)> {
    let mut starts = vec![warm_up];
    starts.extend(kills.iter().map(|k| k + settle));
    let mut ends: Vec<f64> = kills.to_vec();
    ends.push(end);
    starts
        .into_iter()
        .zip(ends)
        .filter(|(from, to)| to > from)
        .collect()
}

/// The trend of `points` within `periods`: the least-squares slope they share, each period at
/// its own level (per second), the seconds the periods' samples span, and the mean.
pub(crate) fn trend(points: &[(f64, f64)], periods: &[(f64, f64)]) -> (f64, f64, f64) {
    let (mut sxy, mut sxx, mut span, mut sum, mut n) = (0.0, 0.0, 0.0, 0.0, 0);
    for (from, to) in periods {
        let inside: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|(t, v)| t >= from && t <= to && !v.is_nan())
            .collect();
        if inside.len() < 2 {
            continue;
        }
        let count = inside.len() as f64;
        let mx = inside.iter().map(|p| p.0).sum::<f64>() / count;
        let my = inside.iter().map(|p| p.1).sum::<f64>() / count;
        for (x, y) in &inside {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
        }
        span += inside[inside.len() - 1].0 - inside[0].0;
        sum += my * count;
        n += inside.len();
    }
    let slope = if sxx == 0.0 { 0.0 } else { sxy / sxx };
    (slope, span, if n == 0 { 0.0 } else { sum / n as f64 })
}

/// How much a series may rise over the measured window and still be flat: `relative` of its
/// mean, or `absolute`, whichever is larger.
pub(crate) struct Flat {
    unit: &'static str,
    relative: f64,
    absolute: f64,
}

pub(crate) fn flat_rule(series: &str) -> Option<Flat> {
    let (unit, relative, absolute) = match series {
        "rss_mib" => ("MiB", 0.05, 4.0),
        "open_files" | "sockets" => ("", 0.05, 8.0),
        "threads" => ("", 0.0, 2.0),
        "parked" => ("", 0.10, 10.0),
        "db_connections" => ("", 0.10, 4.0),
        "grant_changes" => ("rows", 0.05, 100.0),
        "events_pending" => ("", 0.0, 50.0),
        // Kept for days by design (the audit log for good): these grow with the traffic.
        _ => return None,
    };
    Some(Flat {
        unit,
        relative,
        absolute,
    })
}

/// What the trend of a series says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Flat,
    Growing,
    /// It grows with the traffic by design (kept for days, or for good).
    ByDesign,
    /// Its samples within the periods span less than a minute: the run was too short.
    TooShort,
}

/// Judges one series: prints its trend within `periods`.
pub(crate) fn judge(
    label: &str,
    series: &str,
    points: &[(f64, f64)],
    periods: &[(f64, f64)],
) -> Verdict {
    let (per_second, span, mean) = trend(points, periods);
    let per_hour = per_second * 3600.0;
    let minutes = span / 60.0;
    let Some(rule) = flat_rule(series) else {
        println!(
            "   {label}: {per_hour:+.0}/h over {minutes:.0} min (grows with the traffic by design; mean {mean:.0})"
        );
        return Verdict::ByDesign;
    };
    if span < 60.0 {
        println!("   {label}: samples over {minutes:.1} min only, not judged");
        return Verdict::TooShort;
    }
    let rise = per_second * span;
    let allowed = (rule.relative * mean).max(rule.absolute);
    let flat = rise <= allowed;
    println!(
        "   {label}: {per_hour:+.2} {}/h over {minutes:.1} min, rise {rise:+.1} (allowed {allowed:.1}; mean {mean:.1}): {}",
        rule.unit,
        if flat { "flat" } else { "GROWING" }
    );
    report::row(
        &format!("soak: {label}, trend after warm-up"),
        format!("{per_hour:+.2} {}/h (mean {mean:.1})", rule.unit),
        &format!("flat (rise <= {allowed:.1} over {minutes:.0} min)"),
        Some(flat),
    );
    if flat {
        Verdict::Flat
    } else {
        Verdict::Growing
    }
}

/// Every series judged: each replica's and the database's, with its label.
pub(crate) fn judge_all(
    by_replica: &[Vec<Series>],
    database: &[Series],
    periods: &[(f64, f64)],
) -> Vec<(Verdict, String)> {
    use crate::replicas::{DATABASE_SERIES, REPLICA_SERIES};
    let mut verdicts = Vec::new();
    for (replica, series) in by_replica.iter().enumerate() {
        for (s, points) in series.iter().enumerate() {
            let label = format!("replica {replica} {}", REPLICA_SERIES[s]);
            verdicts.push((judge(&label, REPLICA_SERIES[s], points, periods), label));
        }
    }
    for (s, points) in database.iter().enumerate() {
        let label = format!("database {}", DATABASE_SERIES[s]);
        verdicts.push((judge(&label, DATABASE_SERIES[s], points, periods), label));
    }
    verdicts
}
