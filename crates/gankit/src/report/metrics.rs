//! metrics.csv: one row per logged iteration, a header naming every column.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::{Error, Result};

/// Columns every run writes before the objective's own statistics.
pub const BASE_COLUMNS: [&str; 3] = ["step", "epoch", "images_per_s"];
/// Column written last.
pub const WALL_COLUMN: &str = "wall_s";

/// Appends rows to metrics.csv, one line per write, flushed at once.
pub struct MetricsLog {
    file: File,
    path: PathBuf,
    columns: Vec<String>,
}

impl MetricsLog {
    /// Open `path` for appending. A new file gets the header. An existing file must have the
    /// same header; rows after `keep_through_step` (written after the checkpoint a resumed run
    /// starts from) and any torn last line are cut off first.
    pub fn open(path: &Path, columns: Vec<String>, keep_through_step: Option<u64>) -> Result<Self> {
        let header = columns.join(",");
        if path.exists() {
            let keep = keep_through_step.unwrap_or(u64::MAX);
            let text = std::fs::read_to_string(path).at(path)?;
            let mut lines = text.split_inclusive('\n');
            let first = lines.next().unwrap_or("");
            if !first.ends_with('\n') {
                // A header cut short by a crash: nothing was logged yet.
                crate::fsutil::write_atomic(path, format!("{header}\n").as_bytes())?;
                return Self::open(path, columns, keep_through_step);
            }
            if first.trim_end() != header {
                return Err(Error::Run(format!(
                    "{} has columns `{}`, this run writes `{header}`",
                    path.display(),
                    first.trim_end()
                )));
            }
            let mut kept = first.to_string();
            let mut last_step = 0;
            for (i, l) in lines.enumerate() {
                if !l.ends_with('\n') {
                    break; // torn by a crash: only the last line can be
                }
                let fields: Vec<&str> = l.trim_end().split(',').collect();
                let step = fields[0].parse::<u64>().ok();
                let numbers = fields.iter().all(|f| f.parse::<f64>().is_ok());
                match step {
                    Some(s) if numbers && fields.len() == columns.len() && s > last_step => {
                        if s > keep {
                            break;
                        }
                        kept.push_str(l);
                        last_step = s;
                    }
                    _ => {
                        return Err(Error::Run(format!(
                            "{} line {} is damaged ({:?}): restore the file, or delete it to start the log afresh from the checkpoint",
                            path.display(),
                            i + 2,
                            l.trim_end().chars().take(60).collect::<String>()
                        )));
                    }
                }
            }
            if kept.len() != text.len() {
                crate::fsutil::write_atomic(path, kept.as_bytes())?;
            }
        } else {
            crate::fsutil::write_atomic(path, format!("{header}\n").as_bytes())?;
        }
        let file = OpenOptions::new().append(true).open(path).at(path)?;
        Ok(MetricsLog {
            file,
            path: path.to_path_buf(),
            columns,
        })
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Append one row; values in column order.
    pub fn write(&mut self, values: &[f64]) -> Result<()> {
        let line: Vec<String> = values.iter().map(|v| format_value(*v)).collect();
        let line = format!("{}\n", line.join(","));
        // Two writes, so the crash-safety soak can stop between them (a torn line).
        let (a, b) = line.as_bytes().split_at(line.len() / 2);
        self.file.write_all(a).at(&self.path)?;
        crate::fault::point("metrics-append");
        self.file.write_all(b).at(&self.path)
    }

    /// Flush to disk (done before each checkpoint).
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().at(&self.path)
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.6}")
    }
}

/// Read metrics.csv back: the column names and the rows that parse completely.
pub fn read(path: &Path) -> Result<(Vec<String>, Vec<Vec<f64>>)> {
    let f = File::open(path).at(path)?;
    let mut lines = BufReader::new(f).lines();
    let header: Vec<String> = match lines.next() {
        Some(h) => h.at(path)?.split(',').map(str::to_string).collect(),
        None => return Ok((vec![], vec![])),
    };
    let mut rows = Vec::new();
    for l in lines {
        let l = l.at(path)?;
        let row: Option<Vec<f64>> = l.split(',').map(|v| v.parse().ok()).collect();
        match row {
            Some(r) if r.len() == header.len() => rows.push(r),
            _ => break,
        }
    }
    Ok((header, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_cuts_rows_after_the_checkpoint_and_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        let cols = vec!["step".to_string(), "loss".to_string()];
        let mut log = MetricsLog::open(&p, cols.clone(), None).unwrap();
        for s in 1..=5 {
            log.write(&[s as f64, 0.5]).unwrap();
        }
        drop(log);
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str("6,0.4"); // torn: no newline
        std::fs::write(&p, t).unwrap();
        let mut log = MetricsLog::open(&p, cols.clone(), Some(3)).unwrap();
        log.write(&[4.0, 0.25]).unwrap();
        let (h, rows) = read(&p).unwrap();
        assert_eq!(h, cols);
        assert_eq!(
            rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(rows[3][1], 0.25);
        assert!(MetricsLog::open(&p, vec!["other".into()], None).is_err());
    }

    #[test]
    fn a_damaged_line_before_the_end_is_an_error_not_a_silent_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        let cols = vec!["step".to_string(), "loss".to_string()];
        for bad in ["2,x\n", "2\n", "1,0.5\n", "-3,0.1\n"] {
            std::fs::write(&p, format!("step,loss\n1,0.5\n{bad}3,0.2\n")).unwrap();
            let e = MetricsLog::open(&p, cols.clone(), Some(3)).err().unwrap();
            assert!(e.to_string().contains("line 3 is damaged"), "{bad:?}: {e}");
        }
    }
}
