//! The comparison as one self-contained HTML page: the table, then every figure and final
//! grid embedded as a base64 `data:` URL, so the file opens from disk with no network and
//! can be mailed or archived alone.

use std::path::PathBuf;

use base64::Engine;

use super::compare::MemberRow;
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
    rows: &[MemberRow],
    loss_columns: &[String],
    figures: &[(String, PathBuf)],
    grids: &[(String, PathBuf)],
) -> Result<String> {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>{}</title>", escape(title)));
    h.push_str(
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}\
         table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}\
         td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:8px}\
         figcaption{font-size:90%;text-align:center}.row{display:flex;flex-wrap:wrap;align-items:flex-start}\
         img{max-width:100%}</style></head><body>\n",
    );
    h.push_str(&format!(
        "<h1>{}</h1>\n<h2>Metrics</h2>\n<table>\n",
        escape(title)
    ));
    let row = |tag: &str, cells: Vec<String>| {
        let inner: String = cells
            .iter()
            .map(|c| format!("<{tag}>{}</{tag}>", escape(c)))
            .collect();
        format!("<tr>{inner}</tr>\n")
    };
    h.push_str(&row("th", super::compare::header(loss_columns)));
    for r in rows {
        h.push_str(&row("td", super::compare::cells(r, loss_columns)));
    }
    h.push_str(&format!(
        "</table>\n<p>Mean ± standard deviation over each member's seeds. Oscillation: the standard deviation of a loss around its centred moving average over {} logged points, in the second half of training.</p>\n",
        2 * super::stats::OSCILLATION_HALF_WINDOW + 1
    ));
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
