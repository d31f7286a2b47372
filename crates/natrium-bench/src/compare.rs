//! `--compare URL_A URL_B`: the same workload against two servers, alternating
//! A B A B for R rounds, then medians and the ratio A/B per metric.
//!
//! Owns the alternation and the comparison table; it must not know how a
//! workload runs (it calls back into `run_once`).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::conn::Endpoint;
use crate::stats::{new_hist, Report};
use crate::{run_once, Ctx, Load};

/// One metric, compared.
#[derive(Debug, Serialize)]
pub struct Row {
    pub metric: String,
    pub a: f64,
    pub b: f64,
    pub ratio: f64,
}

/// The comparison's result: medians per metric and every round's report.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub rounds: usize,
    pub rows: Vec<Row>,
    pub lost: u64,
    pub interrupted: bool,
    pub runs: Vec<Report>,
    #[serde(skip)]
    pub hists: [Histogram<u64>; 2],
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

/// Runs the alternation. Stops early (with what it has) on Ctrl-C.
pub async fn compare(
    load: &Load,
    urls: [Endpoint; 2],
    rounds: usize,
    ctx: &Ctx,
) -> Result<Comparison> {
    let mut runs: [Vec<Report>; 2] = [Vec::new(), Vec::new()];
    let mut hists = [new_hist(), new_hist()];
    'outer: for round in 0..rounds {
        for (i, ep) in urls.iter().enumerate() {
            if ctx.stop.load(std::sync::atomic::Ordering::Relaxed) {
                break 'outer;
            }
            let mut l = load.clone();
            l.servers = vec![ep.clone()];
            let r = run_once(&l, ctx)
                .await
                .with_context(|| format!("round {} against {}", round + 1, ep.url))?;
            if let Some(lat) = &r.latency {
                hists[i].add(&lat.hist_corrected).ok();
            }
            runs[i].push(r);
        }
    }
    let names: Vec<String> = runs[0]
        .first()
        .map(|r| r.metrics().into_iter().map(|m| m.0).collect())
        .unwrap_or_default();
    let med = |side: &[Report], name: &str| {
        let mut v: Vec<f64> = side
            .iter()
            .flat_map(|r| r.metrics())
            .filter(|m| m.0 == name)
            .map(|m| m.1)
            .collect();
        median(&mut v)
    };
    let rows = names
        .iter()
        .map(|n| {
            let (a, b) = (med(&runs[0], n), med(&runs[1], n));
            Row {
                metric: n.clone(),
                a,
                b,
                ratio: a / b,
            }
        })
        .collect();
    // In the order they ran: A B A B …
    let [ra, rb] = runs;
    let mut all = Vec::with_capacity(ra.len() + rb.len());
    let mut rb = rb.into_iter();
    for r in ra {
        all.push(r);
        all.extend(rb.next());
    }
    Ok(Comparison {
        a: urls[0].url.clone(),
        b: urls[1].url.clone(),
        rounds,
        rows,
        lost: all.iter().map(|r| r.lost + r.duplicated).sum(),
        interrupted: all.iter().any(|r| r.interrupted)
            || ctx.stop.load(std::sync::atomic::Ordering::Relaxed),
        runs: all,
        hists,
    })
}

impl Comparison {
    pub fn table(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "A = {}\nB = {}\nmedians of {} alternating rounds{}",
            self.a,
            self.b,
            self.rounds,
            if self.interrupted {
                " — INTERRUPTED, partial"
            } else {
                ""
            }
        );
        let _ = writeln!(o, "  {:<24} {:>14} {:>14} {:>8}", "metric", "A", "B", "A/B");
        for r in &self.rows {
            let _ = writeln!(
                o,
                "  {:<24} {:>14.1} {:>14.1} {:>8.3}",
                r.metric, r.a, r.b, r.ratio
            );
        }
        if self.lost > 0 {
            let _ = writeln!(
                o,
                "  !!! {} messages LOST or duplicated across rounds !!!",
                self.lost
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
