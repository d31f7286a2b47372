//! Latency distributions as files: the HdrHistogram `.hgrm` percentile text
//! (readable by the usual HdrHistogram plotters) and a hand-written SVG plot of
//! latency by percentile on log scales, one line per server.
//!
//! Owns file formats only; it must not measure. Histograms hold nanoseconds;
//! files show milliseconds (hgrm, as the Java tool's default unit) and
//! microseconds (plot).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// The `.hgrm` text: value, percentile, total count, 1/(1-percentile), then
/// the mean/stddev/max/count footer, exactly as `outputPercentileDistribution`.
pub fn hgrm(h: &Histogram<u64>) -> String {
    const SCALE: f64 = 1e6; // ns → ms
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / SCALE;
        if q < 1.0 {
            let _ = writeln!(
                o,
                "{value:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(o, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        o,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / SCALE,
        h.stdev() / SCALE
    );
    let _ = writeln!(
        o,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / SCALE,
        h.len()
    );
    let _ = writeln!(
        o,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    o
}

/// One line of the plot: (quantile < 1, µs) points, as `points` gives them.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
    /// Index into the palette (wraps).
    pub color: usize,
}

/// A histogram's percentile curve, the points `hgrm` writes: (quantile, µs).
pub fn points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_quantiles(5)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| (v.quantile_iterated_to(), v.value_iterated_to() as f64 / 1e3))
        .collect()
}

/// The same curve read back from `.hgrm` text (values in ms); `None` when
/// no row parses.
pub fn points_of_hgrm(text: &str) -> Option<Vec<(f64, f64)>> {
    let pts: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let ms: f64 = f.next()?.parse().ok()?;
            let q: f64 = f.next()?.parse().ok()?;
            (q < 1.0).then_some((q, ms * 1e3))
        })
        .collect();
    (!pts.is_empty()).then_some(pts)
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// Latency (µs, log) by percentile (log of 1/(1-p), 0 % … 99.9999 %).
pub fn svg(title: &str, series: &[Series]) -> String {
    let (w, h, l, r, t, b) = (800.0, 480.0, 70.0, 20.0, 40.0, 60.0);
    let (pw, ph) = (w - l - r, h - t - b);
    let max_x = 6.0; // 99.9999 %
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .map(|&(q, us)| ((1.0 / (1.0 - q)).log10().min(max_x), us.max(0.1)))
                .collect()
        })
        .collect();
    let all = points.iter().flatten().map(|p| p.1);
    let lo = all
        .clone()
        .fold(f64::INFINITY, f64::min)
        .max(0.1)
        .log10()
        .floor();
    let hi = all.fold(1.0f64, f64::max).log10().ceil().max(lo + 1.0);
    let px = |x: f64| l + pw * x / max_x;
    let py = |v: f64| t + ph * (1.0 - (v.log10() - lo) / (hi - lo));
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"]
        .iter()
        .enumerate()
    {
        let x = px(i as f64);
        let _ = writeln!(
            o,
            r##"<line x1="{x}" y1="{t}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{label}</text>"##,
            t + ph,
            t + ph + 18.0
        );
    }
    let mut d = lo;
    while d <= hi {
        let v = 10f64.powf(d);
        let y = py(v);
        let label = if v >= 1000.0 {
            format!("{} ms", v / 1000.0)
        } else {
            format!("{v} µs")
        };
        let _ = writeln!(
            o,
            r##"<line x1="{l}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
            l + pw,
            l - 6.0,
            y + 4.0
        );
        d += 1.0;
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        l + pw / 2.0,
        h - 15.0
    );
    for (i, (s, pts)) in series.iter().zip(&points).enumerate() {
        let color = COLORS[s.color % COLORS.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(x, v)| format!("{:.1},{:.1}", px(*x), py(*v)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            path.join(" ")
        );
        let ly = t + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            o,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            l + 12.0,
            l + 40.0,
            l + 46.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    o.push_str("</svg>\n");
    o
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Histogram<u64> {
        let mut h = crate::stats::new_hist();
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        h
    }

    #[test]
    fn hgrm_has_header_rows_and_footer() {
        let text = hgrm(&sample());
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(
            text.contains("#[Max     =        1.000, Total count    =         1000]"),
            "{text}"
        );
        let last = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert!(last.contains("1.000000000000       1000"), "{last}");
    }

    #[test]
    fn svg_draws_one_line_per_series() {
        let (a, b) = (sample(), sample());
        let s = svg(
            "t",
            &[
                Series {
                    name: "a".into(),
                    points: points(&a),
                    dashed: false,
                    color: 0,
                },
                Series {
                    name: "b<".into(),
                    points: points(&b),
                    dashed: true,
                    color: 0,
                },
            ],
        );
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("b&lt;") && s.ends_with("</svg>\n"));
        assert_eq!(s.matches(r##"stroke="#1f77b4" stroke-width"##).count(), 4);
    }

    #[test]
    fn hgrm_reads_back_as_the_same_curve() {
        let h = sample();
        let back = points_of_hgrm(&hgrm(&h)).expect("rows");
        let orig = points(&h);
        assert_eq!(back.len(), orig.len());
        for ((q1, v1), (q2, v2)) in back.iter().zip(&orig) {
            assert!(
                (q1 - q2).abs() < 1e-9 && (v1 - v2).abs() < 1.0,
                "{q1} {v1} {q2} {v2}"
            );
        }
        assert!(points_of_hgrm("not a histogram\n").is_none());
    }
}
