//! The comparison as one self-contained HTML page: the table, then every figure and final
//! grid embedded as a base64 `data:` URL, so the file opens from disk with no network and
//! can be mailed or archived alone.

use std::path::PathBuf;

use base64::Engine;

use super::compare::Table;
use super::settings::defaults_note;
use crate::{Error, Result};

/// `<`, `>`, `&` and `"` escaped.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn embedded_png(path: &PathBuf) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// A heading and `items` (caption, PNG) as embedded figures in a wrapping row; nothing
/// when there are none.
fn figure_row(h: &mut String, heading: &str, items: &[(String, PathBuf)]) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    h.push_str(&format!("<h2>{heading}</h2>\n<div class=\"row\">\n"));
    for (caption, png) in items {
        h.push_str(&format!(
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
            embedded_png(png)?,
            escape(caption),
            escape(caption)
        ));
    }
    h.push_str("</div>\n");
    Ok(())
}

/// The page: `figures` are (caption, PNG) pairs, `grids` (run, PNG) pairs shown in a row.
pub fn page(
    title: &str,
    t: &Table,
    figures: &[(String, PathBuf)],
    grids: &[(String, PathBuf)],
) -> Result<String> {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>{}</title>", escape(title)));
    h.push_str(
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}\
         table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right;white-space:nowrap}\
         td:first-child,th:first-child{text-align:left}\
         tr.settings td{text-align:left;color:#444;font-size:90%;border-top:none;padding-left:2em}\
         tr.member td{border-bottom:none}figure{display:inline-block;margin:8px}\
         figcaption{font-size:90%;text-align:center}.row{display:flex;flex-wrap:wrap;align-items:flex-start}\
         img{max-width:100%}</style></head><body>\n",
    );
    h.push_str(&format!("<h1>{}</h1>\n", escape(title)));
    let row = |class: &str, tag: &str, cells: &[String]| {
        let inner: String = cells
            .iter()
            .map(|c| format!("<{tag}>{}</{tag}>", escape(c)))
            .collect();
        format!("<tr class=\"{class}\">{inner}</tr>\n")
    };
    // The metrics, each member's settings on a line of their own under its row (a
    // settings column would make the table wider than a window).
    let settings_column = super::compare::SETTINGS_COLUMN;
    let mut head = super::compare::header();
    head.remove(settings_column);
    h.push_str("<h2>Settings and metrics</h2>\n<table class=\"metrics\">\n");
    h.push_str(&row("head", "th", &head));
    for r in &t.rows {
        let mut cells = super::compare::cells(r);
        let settings = cells.remove(settings_column);
        h.push_str(&row("member", "td", &cells));
        h.push_str(&format!(
            "<tr class=\"settings\"><td colspan=\"{}\">{}</td></tr>\n",
            cells.len(),
            escape(&settings)
        ));
    }
    h.push_str("</table>\n");
    h.push_str(&format!(
        "<p>Under each member, its settings. {} Metrics: mean ± standard deviation over each member's seeds.</p>\n",
        escape(&defaults_note(&t.setting_keys))
    ));
    let (rows, loss_columns) = (&t.rows, &t.loss_columns);
    if !loss_columns.is_empty() {
        h.push_str("<h2>Loss oscillation</h2>\n<table class=\"oscillation\">\n");
        h.push_str(&row(
            "head",
            "th",
            &super::compare::oscillation_header(loss_columns),
        ));
        for r in rows {
            let cells = super::compare::oscillation_cells(r, loss_columns);
            h.push_str(&row("member", "td", &cells));
        }
        h.push_str("</table>\n");
        h.push_str(&format!(
            "<p>The standard deviation of each loss around its centred moving average over {} logged points, in the second half of training (the mean over each member's seeds; compare.json has their spread); in brackets, as a share of the loss's mean absolute value over the same half.</p>\n",
            2 * super::stats::OSCILLATION_HALF_WINDOW + 1
        ));
    }
    figure_row(&mut h, "Final sample grids", grids)?;
    figure_row(&mut h, "Curves", figures)?;
    h.push_str("</body></html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
