//! Formatting for people: sizes, rates, times, tables.

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `512 B`, `64.0 KiB`, `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A count with a decimal suffix: `950`, `12.3 k`, `4.56 M`.
pub fn count(v: f64) -> String {
    let (v, suffix) = if v >= 1e9 {
        (v / 1e9, " G")
    } else if v >= 1e6 {
        (v / 1e6, " M")
    } else if v >= 1e3 {
        (v / 1e3, " k")
    } else {
        return format!("{v:.0}");
    };
    if v >= 100.0 {
        format!("{v:.0}{suffix}")
    } else {
        format!("{v:.1}{suffix}")
    }
}

/// A duration given in nanoseconds: `312 ns`, `12.3 µs`, `1.20 ms`.
pub fn nanos(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// A point in time as UTC: `2025-03-01 12:00:05 UTC`.
pub fn time(t: SystemTime) -> String {
    let Ok(since) = t.duration_since(UNIX_EPOCH) else {
        return "before 1970".to_owned();
    };
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// How long ago `t` was: `42 s ago`, `3 min ago`, `5 h ago`, `2 days ago`.
pub fn ago(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", span(d)),
        Err(e) => format!("{} in the future", span(e.duration())),
    }
}

fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Column alignment.
#[derive(Clone, Copy)]
pub enum Align {
    Left,
    Right,
}

/// A table of text, columns as wide as their widest cell.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// Writes the header and the rows; `after(i)` gives lines to print
    /// below row `i` (indented, not part of the columns).
    pub fn write(
        &self,
        out: &mut impl Write,
        indent: &str,
        after: impl Fn(usize) -> Vec<String>,
    ) -> io::Result<()> {
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.columns[i].0.len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.columns.len()).map(width).collect();
        let line = |cells: Vec<&str>| {
            let mut s = String::from(indent);
            let last = cells.len() - 1;
            for (i, cell) in cells.into_iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                match self.columns[i].1 {
                    Align::Left if i == last => s.push_str(cell),
                    Align::Left => {
                        s.push_str(cell);
                        s.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        s.extend(std::iter::repeat_n(' ', pad));
                        s.push_str(cell);
                    }
                }
                if i != last {
                    s.push_str("  ");
                }
            }
            s.truncate(s.trim_end().len());
            s
        };
        writeln!(out, "{}", line(self.columns.iter().map(|c| c.0).collect()))?;
        for (i, row) in self.rows.iter().enumerate() {
            writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
            for extra in after(i) {
                writeln!(out, "{indent}    {extra}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_rates_and_times_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(69_632), "68.0 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(count(950.0), "950");
        assert_eq!(count(12_345.0), "12.3 k");
        assert_eq!(count(63_000_000.0), "63.0 M");
        assert_eq!(count(450_000_000.0), "450 M");
        assert_eq!(nanos(312), "312 ns");
        assert_eq!(nanos(12_345), "12.35 µs");
        assert_eq!(nanos(1_200_000), "1.20 ms");
        assert_eq!(time(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_294_405); // a leap year
        assert_eq!(time(t), "2024-03-01 12:00:05 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(time(t), "2000-02-29 00:00:00 UTC");
        assert_eq!(span(Duration::from_secs(42)), "42 s");
        assert_eq!(span(Duration::from_secs(300)), "5 min");
        assert_eq!(span(Duration::from_secs(3 * 86_400)), "3 days");
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("N", Align::Right),
            ("X", Align::Left),
        ]);
        t.row(vec!["a".into(), "10".into(), "x".into()]);
        t.row(vec!["long".into(), "2".into(), "".into()]);
        let mut out = Vec::new();
        t.write(&mut out, "", |i| {
            if i == 0 {
                vec!["! note".into()]
            } else {
                vec![]
            }
        })
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "NAME   N  X\na     10  x\n    ! note\nlong   2\n");
    }
}
