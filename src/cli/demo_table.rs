//! `flyp demo`'s table: every row's accuracy and every planned difference with a 95 % interval
//! from a paired bootstrap over seeds and test images (`flyp::report::bootstrap`), from the
//! predictions each seed's results.json keeps.

use std::collections::BTreeMap;

use anyhow::Context;
use flyp::report::bootstrap::{Bootstrap, Interval};
use serde_json::Value;

/// The planned comparisons (README): (a, b) for a − b.
pub const COMPARISONS: [(&str, &str); 6] = [
    ("finetune", "zeroshot"),
    ("flyp", "zeroshot"),
    ("flyp", "finetune"),
    ("flyp", "lp-ft"),
    ("flyp + WiSE-FT", "finetune + WiSE-FT"),
    ("flyp + WiSE-FT", "lp-ft + WiSE-FT"),
];
pub const REPLICATES: usize = 2000;

/// Every row's accuracy and every planned difference, on each test set and the OOD mean, with
/// 95 % intervals from a paired bootstrap over the reports' seeds and test images.
#[allow(clippy::type_complexity)]
pub fn intervals(
    reports: &[Value],
) -> anyhow::Result<(
    BTreeMap<String, BTreeMap<String, Interval>>,
    Vec<(String, BTreeMap<String, Interval>)>,
)> {
    let first = &reports[0];
    let rows: Vec<String> = first["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["method"].as_str().map(String::from))
        .collect();
    let oods: Vec<String> = serde_json::from_value(first["sets"]["ood"].clone())?;
    let sets: Vec<String> = std::iter::once("test".to_string())
        .chain(oods.clone())
        .collect();
    // correct[set][row][seed][image]
    let mut correct = Vec::new();
    for set in &sets {
        let mut by_row = Vec::new();
        for row in &rows {
            let mut by_seed = Vec::new();
            for report in reports {
                let labels: Vec<usize> = serde_json::from_value(report["labels"][set].clone())
                    .with_context(|| format!("results.json has no labels of {set}"))?;
                let predicted: Vec<usize> = serde_json::from_value(
                    report["predictions"][row][set].clone(),
                )
                .with_context(|| format!("results.json has no predictions of {row} on {set}"))?;
                by_seed.push(labels.iter().zip(&predicted).map(|(l, p)| l == p).collect());
            }
            by_row.push(by_seed);
        }
        correct.push(by_row);
    }
    let boot = Bootstrap::new(&correct, REPLICATES, 0xB007);
    let row = |name: &str| rows.iter().position(|r| r == name);
    let ood_sets: Vec<usize> = (1..sets.len()).collect();
    let stat_names: Vec<String> = sets
        .iter()
        .cloned()
        .chain(["ood_mean".to_string()])
        .collect();
    let value = |acc: &[Vec<f64>], stat: usize, r: usize| -> f64 {
        if stat < sets.len() {
            acc[stat][r]
        } else {
            ood_sets.iter().map(|&s| acc[s][r]).sum::<f64>() / ood_sets.len() as f64
        }
    };
    let mut accuracies = BTreeMap::new();
    for (r, name) in rows.iter().enumerate() {
        let per_set = stat_names
            .iter()
            .enumerate()
            .map(|(s, set)| (set.clone(), boot.interval(0.95, |acc| value(acc, s, r))))
            .collect();
        accuracies.insert(name.clone(), per_set);
    }
    let mut differences = Vec::new();
    for (a, b) in COMPARISONS {
        let (Some(ra), Some(rb)) = (row(a), row(b)) else {
            continue;
        };
        let per_set = stat_names
            .iter()
            .enumerate()
            .map(|(s, set)| {
                (
                    set.clone(),
                    boot.interval(0.95, |acc| value(acc, s, ra) - value(acc, s, rb)),
                )
            })
            .collect();
        differences.push((format!("{a} − {b}"), per_set));
    }
    Ok((accuracies, differences))
}

/// Print the table of `reports` (one per seed; the rows and sets are the first's; a WiSE-FT row
/// names the α each seed chose on validation).
pub fn print_intervals(
    reports: &[Value],
    accuracies: &BTreeMap<String, BTreeMap<String, Interval>>,
    differences: &[(String, BTreeMap<String, Interval>)],
) {
    let cell = |i: &Interval| {
        format!(
            "{:>5.1} [{:>5.1}, {:>5.1}]",
            100.0 * i.value,
            100.0 * i.low,
            100.0 * i.high
        )
    };
    let report = &reports[0];
    let oods: Vec<String> =
        serde_json::from_value(report["sets"]["ood"].clone()).unwrap_or_default();
    let columns: Vec<String> = std::iter::once("test".to_string())
        .chain(oods)
        .chain(["ood_mean".to_string()])
        .collect();
    let header: String = columns.iter().map(|c| format!("{c:>21}")).collect();
    println!("top-1 %, 95 % interval; ID = test (Twemoji), OOD = the others");
    println!("{:<38}{header}", "method");
    for row in report["rows"].as_array().into_iter().flatten() {
        let name = row["method"].as_str().unwrap_or("?");
        let alphas: Vec<String> = reports
            .iter()
            .filter_map(|r| {
                r["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|x| x["method"] == row["method"])
            })
            .filter_map(|x| x["alpha"].as_f64().map(|a| a.to_string()))
            .collect();
        let label = if alphas.is_empty() {
            name.to_string()
        } else {
            format!("{name} α={}", alphas.join("/"))
        };
        let cells: String = columns
            .iter()
            .map(|c| format!("{:>21}", cell(&accuracies[name][c])))
            .collect();
        println!("{label:<38}{cells}");
    }
    println!("planned differences, points (* = the interval excludes 0)");
    for (name, per_set) in differences {
        let cells: String = columns
            .iter()
            .map(|c| {
                let i = &per_set[c];
                let mark = if i.excludes_zero() { "*" } else { " " };
                format!("{:>20}{mark}", cell(i))
            })
            .collect();
        println!("{name:<38}{cells}");
    }
}
