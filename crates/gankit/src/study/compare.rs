//! `gankit compare`: runs side by side. Overlaid curves (each loss column, FID over
//! training, the Lipschitz bound where logged), the final grids side by side, a table of
//! each member's settings that differ between members and its metrics as mean ± std over
//! its seeds, and one of how much each loss oscillates in the second half of training
//! (report 001 §4 judges its α schedules by it). Written as PNGs, Markdown, compare.json
//! and one self-contained HTML page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::runs::RunRecord;
use super::settings::{defaults_note, differing, member_values, settings_cell};
use super::stats::{Spread, level, oscillation};
use crate::report::plot::{Curve, curves_png};
use crate::{Error, Result};

/// One member's line of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MemberRow {
    pub member: String,
    /// Its values of the settings that differ between the compared members (key → value,
    /// as `--set` writes them; values joined by " / " where its own runs disagree).
    pub settings: BTreeMap<String, String>,
    pub runs: Vec<String>,
    /// Iterations of its runs (the least of them).
    pub steps: u64,
    pub fid: Option<Spread>,
    pub precision: Option<Spread>,
    pub recall: Option<Spread>,
    pub ms_per_iteration: Option<Spread>,
    /// (loss column, its oscillation over the member's runs).
    pub oscillation: Vec<(String, Spread)>,
    /// (loss column, its level over the member's runs: the mean |value| the oscillation is
    /// relative to).
    pub level: Vec<(String, Spread)>,
}

/// The members' rows and what their columns are.
#[derive(Clone, Debug)]
pub struct Table {
    pub rows: Vec<MemberRow>,
    /// The loss columns, in the order of the oscillation table's columns.
    pub loss_columns: Vec<String>,
    /// The config keys that set the members apart (`settings::differing`).
    pub setting_keys: Vec<String>,
}

/// What `compare` wrote.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub table: Table,
    /// Every file written, with its size in bytes.
    pub files: Vec<(PathBuf, u64)>,
}

/// The members of `runs`, in order of first appearance, with their rows.
pub fn table(runs: &[RunRecord]) -> Table {
    let mut loss_columns: Vec<String> = Vec::new();
    for r in runs {
        for c in r.loss_columns() {
            if !loss_columns.contains(&c) {
                loss_columns.push(c);
            }
        }
    }
    let mut members: Vec<&str> = Vec::new();
    for r in runs {
        if !members.contains(&r.member.as_str()) {
            members.push(&r.member);
        }
    }
    let keys = differing(runs.iter().map(|r| &r.settings));
    let rows = members
        .iter()
        .map(|m| {
            let mine: Vec<&RunRecord> = runs.iter().filter(|r| r.member == *m).collect();
            let settings =
                member_values(&keys, &mine.iter().map(|r| &r.settings).collect::<Vec<_>>());
            let of = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
                Spread::of(
                    &mine
                        .iter()
                        .map(|r| f(r).unwrap_or(f64::NAN))
                        .collect::<Vec<_>>(),
                )
            };
            // A statistic of each loss column over the member's runs.
            let per_loss = |stat: fn(&[f64], &[f64]) -> Option<f64>| -> Vec<(String, Spread)> {
                loss_columns
                    .iter()
                    .filter_map(|c| {
                        let v = of(&|r| r.series(c).and_then(|(s, v)| stat(&s, &v)))?;
                        Some((c.clone(), v))
                    })
                    .collect()
            };
            let oscillation = per_loss(oscillation);
            let level = per_loss(level);
            MemberRow {
                member: m.to_string(),
                settings,
                runs: mine.iter().map(|r| r.name.clone()).collect(),
                steps: mine.iter().map(|r| r.steps()).min().unwrap_or(0),
                fid: of(&|r| r.eval_number("fid")),
                precision: of(&|r| r.eval_number("precision")),
                recall: of(&|r| r.eval_number("recall")),
                ms_per_iteration: of(&|r| r.ms_per_iteration()),
                oscillation,
                level,
            }
        })
        .collect();
    Table {
        rows,
        loss_columns,
        setting_keys: keys,
    }
}

/// The settings column of [`header`] and [`cells`].
pub const SETTINGS_COLUMN: usize = 1;

/// The main table's header cells.
pub fn header() -> Vec<String> {
    [
        "member",
        "settings",
        "runs",
        "iterations",
        "FID",
        "precision",
        "recall",
        "ms/it",
    ]
    .map(String::from)
    .to_vec()
}

fn show(s: Option<Spread>, digits: usize) -> String {
    s.map_or("–".to_string(), |s| s.show(digits))
}

/// A member's cells under [`header`]: "–" where nothing was measured.
pub fn cells(r: &MemberRow) -> Vec<String> {
    vec![
        r.member.clone(),
        settings_cell(&r.settings),
        r.runs.len().to_string(),
        r.steps.to_string(),
        show(r.fid, 2),
        show(r.precision, 3),
        show(r.recall, 3),
        show(r.ms_per_iteration, 0),
    ]
}

/// The oscillation table's header cells: the member, then one column per loss.
pub fn oscillation_header(loss_columns: &[String]) -> Vec<String> {
    let mut h = vec!["member".to_string()];
    h.extend(loss_columns.iter().cloned());
    h
}

/// A member's cells under [`oscillation_header`]: each loss's oscillation (the mean over
/// the member's seeds, to 3 digits; the spread is in compare.json), with its share of the
/// loss's level in brackets.
pub fn oscillation_cells(r: &MemberRow, loss_columns: &[String]) -> Vec<String> {
    let find =
        |v: &[(String, Spread)], col: &str| v.iter().find(|(k, _)| k == col).map(|(_, s)| *s);
    let mut c = vec![r.member.clone()];
    for col in loss_columns {
        let o = find(&r.oscillation, col);
        let relative = match (o, find(&r.level, col)) {
            (Some(o), Some(l)) if l.mean > 1e-12 => {
                format!(" ({:.0} %)", 100.0 * o.mean / l.mean)
            }
            _ => String::new(),
        };
        let o = o.map_or("–".to_string(), |o| o.mean_significant(3));
        c.push(format!("{o}{relative}"));
    }
    c
}

/// One Markdown table.
pub fn markdown_table(head: &[String], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(head);
    out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
    for r in rows {
        out.push_str(&line(&r));
    }
    out
}

impl Table {
    /// Both tables in Markdown: settings and metrics (with what the settings cells leave
    /// out), then the losses' oscillation.
    pub fn markdown(&self) -> String {
        let mut out = markdown_table(&header(), self.rows.iter().map(cells));
        let note = defaults_note(&self.setting_keys);
        if !note.is_empty() {
            out.push_str(&format!("\n{note}\n"));
        }
        if !self.loss_columns.is_empty() {
            out.push_str("\nLoss oscillation (share of the loss's level):\n\n");
            out.push_str(&markdown_table(
                &oscillation_header(&self.loss_columns),
                self.rows
                    .iter()
                    .map(|r| oscillation_cells(r, &self.loss_columns)),
            ));
        }
        out
    }
}

/// Compare `runs` into `out` (created): the PNGs, compare.md, compare.json and report.html.
pub fn write(runs: &[RunRecord], out: &Path, title: &str) -> Result<Comparison> {
    if runs.is_empty() {
        return Err(Error::Config(
            "nothing to compare: give run folders or a study folder".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let table = table(runs);
    let loss_columns = &table.loss_columns;
    let mut figures: Vec<(String, PathBuf)> = Vec::new();
    let mut plot = |file: String, caption: String, column: &str, y: &str| -> Result<()> {
        let curves: Vec<Curve> = runs
            .iter()
            .filter_map(|r| {
                let (steps, values) = r.series(column)?;
                let (steps, values): (Vec<f64>, Vec<f64>) = steps
                    .into_iter()
                    .zip(values)
                    .filter(|(_, v)| v.is_finite())
                    .unzip();
                (!values.is_empty()).then(|| Curve {
                    name: r.name.clone(),
                    steps,
                    values,
                })
            })
            .collect();
        if curves.is_empty() {
            return Ok(());
        }
        let path = out.join(&file);
        curves_png(&path, &caption, y, &curves)?;
        figures.push((caption, path));
        Ok(())
    };
    for c in loss_columns {
        plot(format!("curve_{c}.png"), c.clone(), c, c)?;
    }
    plot(
        "curve_fid.png".into(),
        "FID over training".into(),
        "fid",
        "FID",
    )?;
    plot(
        "curve_lipschitz_bound.png".into(),
        "Lipschitz upper bound of D (product of spectral norms)".into(),
        "lipschitz_bound",
        "bound",
    )?;
    let grids = grids_side_by_side(runs, &out.join("grids.png"))?;
    let md = format!(
        "# {title}\n\n{}\nOscillation: the standard deviation of each loss around its centred moving average over {} logged points, in the second half of training (mean ± std over a member's seeds).\n",
        table.markdown(),
        2 * super::stats::OSCILLATION_HALF_WINDOW + 1
    );
    write_file(&out.join("compare.md"), md.as_bytes())?;
    let json =
        serde_json::to_string_pretty(&serde_json::json!({ "title": title, "setting_keys": table.setting_keys, "members": table.rows }))
            .expect("rows serialise");
    write_file(&out.join("compare.json"), json.as_bytes())?;
    let html = super::html::page(title, &table, &figures, &grids)?;
    write_file(&out.join("report.html"), html.as_bytes())?;
    let mut files: Vec<PathBuf> = figures.into_iter().map(|(_, p)| p).collect();
    if !grids.is_empty() {
        files.push(out.join("grids.png"));
    }
    files.extend(["compare.md", "compare.json", "report.html"].map(|f| out.join(f)));
    let files = files
        .into_iter()
        .map(|p| {
            let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, size)
        })
        .collect();
    Ok(Comparison { table, files })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::fsutil::write_atomic(path, bytes)
}

/// Each run's last sample grid, left to right in the runs' order with a 8-pixel white gap,
/// into one PNG at `path`; the (run, grid file) pairs used. Nothing when no run has a grid.
fn grids_side_by_side(runs: &[RunRecord], path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut used = Vec::new();
    let mut images = Vec::new();
    for r in runs {
        let Some(g) = &r.last_grid else { continue };
        let img = image::open(g)
            .map_err(|e| Error::Data(format!("{}: not a readable PNG ({e})", g.display())))?
            .to_rgb8();
        used.push((r.name.clone(), g.clone()));
        images.push(img);
    }
    if images.is_empty() {
        return Ok(used);
    }
    const GAP: u32 = 8;
    let width = images.iter().map(|i| i.width()).sum::<u32>() + GAP * (images.len() as u32 - 1);
    let height = images.iter().map(|i| i.height()).max().unwrap_or(1);
    let mut canvas = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut x = 0;
    for img in &images {
        image::imageops::replace(&mut canvas, img, x as i64, 0);
        x += img.width() + GAP;
    }
    let mut png = Vec::new();
    canvas
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Run(format!("cannot encode {}: {e}", path.display())))?;
    write_file(path, &png)?;
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, fid: f64, swing: f64) -> RunRecord {
        run_with(name, fid, swing, &[])
    }

    fn run_with(name: &str, fid: f64, swing: f64, sets: &[&str]) -> RunRecord {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let config = crate::config::Config::from_toml_str("", "t", &sets).unwrap();
        let rows: Vec<Vec<f64>> = (1..=100)
            .map(|s| {
                let sign = if s % 2 == 0 { 1.0 } else { -1.0 };
                vec![s as f64, 1.0 + swing * sign, 0.1 * s as f64]
            })
            .collect();
        RunRecord {
            name: name.into(),
            member: super::super::runs::member_of(name).into(),
            dir: PathBuf::from(name),
            columns: vec!["step".into(), "d_loss".into(), "wall_s".into()],
            rows,
            eval: Some(serde_json::json!({"fid": fid, "precision": 0.5, "recall": 0.25})),
            last_grid: None,
            settings: super::super::settings::Settings::of(&config),
        }
    }

    #[test]
    fn members_gather_their_seeds_and_the_table_shows_mean_and_std() {
        let b = [
            "train.loss=lsgan",
            "lsgan.alpha.max=0.5",
            "lsgan.alpha.end=80",
        ];
        let runs = [
            run_with("a-s0", 10.0, 0.5, &["train.seed=0"]),
            run_with("a-s1", 12.0, 0.5, &["train.seed=1"]),
            run_with("b-s0", 20.0, 0.0, &b),
        ];
        let t = table(&runs);
        let (rows, cols) = (&t.rows, &t.loss_columns);
        assert_eq!(*cols, vec!["d_loss"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].runs, vec!["a-s0", "a-s1"]);
        let fid = rows[0].fid.unwrap();
        assert_eq!((fid.mean, fid.n), (11.0, 2));
        assert!((fid.std - 2f64.sqrt()).abs() < 1e-12);
        assert!((rows[0].ms_per_iteration.unwrap().mean - 100.0).abs() < 1e-9);
        let swing = rows[0].oscillation[0].1.mean;
        assert!((swing - 0.5 * (1.0 - 1.0 / 21.0)).abs() < 1e-9, "{swing}");
        assert!(rows[1].oscillation[0].1.mean < 1e-12);
        let md = t.markdown();
        assert!(
            md.contains("| a | defaults | 2 | 100 | 11.00 ± 1.41 | 0.500 ± 0.000 |"),
            "{md}"
        );
        let b_row = "| b | lsgan.alpha.end 80, lsgan.alpha.max 0.5, train.loss lsgan | 1 | 100 | 20.00 | 0.500 |";
        assert!(md.contains(b_row), "{md}");
        assert!(md.contains("train.loss non-saturating."), "{md}");
        assert_eq!(rows[1].settings["lsgan.alpha.max"], "0.5");
        assert!(!rows[0].settings.contains_key("lsgan.alpha.max"));
        // Member a's loss alternates 0.5 and 1.5 around 1 (level 1): 48 % of it.
        assert!((rows[0].level[0].1.mean - 1.0).abs() < 1e-12);
        assert!(md.contains("| a | 0.476 (48 %) |"), "{md}");
    }

    #[test]
    fn writes_every_file_and_an_html_page_with_its_images_inside() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("cmp");
        let c = write(&[run("a-s0", 10.0, 0.5), run("b-s0", 20.0, 0.1)], &out, "t").unwrap();
        let names: Vec<String> = c
            .files
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "curve_d_loss.png",
                "compare.md",
                "compare.json",
                "report.html"
            ]
        );
        assert!(c.files.iter().all(|(_, size)| *size > 0));
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 1);
        assert!(!html.contains("http"), "nothing from the network");
    }
}
