//! What a run prints and writes: the verification counts, then the scenario's figures in
//! the order the scenario added them, as a table for people and as JSON for tools.

use crate::ledger::Verdict;
use hdrhistogram::Histogram;
use serde_json::{Map, Value};
use std::path::Path;

/// Latencies in microseconds, from 1 µs to a minute, at three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds are valid")
}

/// The result of one scenario.
#[derive(Debug)]
pub struct Report {
    pub scenario: &'static str,
    pub verdict: Verdict,
    figures: Vec<(String, Value)>,
    /// Sentences the table prints under the figures (how the run was shaped, warnings).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(scenario: &'static str) -> Report {
        Report {
            scenario,
            verdict: Verdict::default(),
            figures: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds (or replaces) one figure.
    pub fn figure(&mut self, name: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.figures.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.figures.push((name.to_owned(), value)),
        }
    }

    /// A rate, rounded to a whole number per second.
    pub fn rate(&mut self, name: &str, count: u64, seconds: f64) {
        let per_sec = if seconds > 0.0 {
            (count as f64 / seconds).round()
        } else {
            0.0
        };
        self.figure(name, per_sec);
    }

    /// p50, p90, p99, p99.9 and max of `histogram` (µs) in milliseconds, named
    /// `{prefix}p50_ms` and so on; an empty prefix gives the top-level `p50_ms`.
    pub fn latencies(&mut self, prefix: &str, histogram: &Histogram<u64>) {
        for (name, quantile) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            let us = histogram.value_at_quantile(quantile);
            self.figure(&format!("{prefix}{name}_ms"), millis(us));
        }
        self.figure(&format!("{prefix}max_ms"), millis(histogram.max()));
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.figures.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The JSON report: `scenario`, the verification counts, then every figure.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("scenario".into(), self.scenario.into());
        if let Value::Object(counts) = serde_json::to_value(self.verdict).expect("counts serialize")
        {
            object.extend(counts);
        }
        object.insert("passed".into(), self.verdict.clean().into());
        for (name, value) in &self.figures {
            object.insert(name.clone(), value.clone());
        }
        object.insert(
            "notes".into(),
            Value::Array(self.notes.iter().cloned().map(Value::from).collect()),
        );
        Value::Object(object)
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
    }

    /// The human table, on stdout.
    pub fn print_table(&self) {
        let v = &self.verdict;
        println!();
        println!("scenario: {}", self.scenario);
        let width = self
            .figures
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(0)
            .max(20);
        for (name, value) in &self.figures {
            println!("  {name:<width$}  {}", display(value));
        }
        println!(
            "  verification: lost {} · duplicated {} · reordered {} · diverged {} · refused {} · devices converged {}/{}",
            v.lost, v.duplicated, v.reordered, v.diverged, v.refused, v.devices_converged, v.devices
        );
        for note in &self.notes {
            println!("  note: {note}");
        }
        println!(
            "  result: {}",
            if v.clean() {
                "PASS (nothing lost, duplicated or reordered)"
            } else {
                "FAIL"
            }
        );
    }
}

fn millis(us: u64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}

fn display(value: &Value) -> String {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() >= 1000.0 => group_thousands(f as i64),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_top_level_fields() {
        let mut report = Report::new("direct");
        let mut h = latency_histogram();
        h.record(1500).unwrap();
        report.rate("msgs_per_sec", 3000, 2.0);
        report.latencies("", &h);
        let json = report.to_json();
        for field in [
            "scenario",
            "lost",
            "duplicated",
            "reordered",
            "msgs_per_sec",
            "p50_ms",
            "p99_ms",
        ] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        assert_eq!(json["msgs_per_sec"], 1500.0);
        assert_eq!(json["p50_ms"], 1.5);
        assert_eq!(json["passed"], true);
    }

    #[test]
    fn thousands_are_grouped_for_people() {
        assert_eq!(group_thousands(1_234_567), "1,234,567");
        assert_eq!(group_thousands(999), "999");
    }
}
