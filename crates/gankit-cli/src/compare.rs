//! `gankit compare`: runs or a study folder side by side (see `gankit::study::compare`).

use std::path::PathBuf;

use clap::Args;
use gankit::Result;
use gankit::study::{compare, runs};

#[derive(Args)]
pub struct CompareArgs {
    /// Run folders, or a study folder (its runs/), or a folder of run folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Where to write the figures, compare.md, compare.json and report.html (default: a
    /// study folder's compare/, else ./compare).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The report's title (default: a study folder's study title, else its name, else
    /// "comparison").
    #[arg(long)]
    pub title: Option<String>,
}

pub fn compare(args: CompareArgs) -> Result<()> {
    let runs = runs::collect(&args.paths)?;
    let study = (args.paths.len() == 1 && args.paths[0].join("runs").is_dir())
        .then(|| args.paths[0].clone());
    let out = args.out.unwrap_or_else(|| match &study {
        Some(s) => s.join("compare"),
        None => PathBuf::from("compare"),
    });
    let title = args.title.unwrap_or_else(|| {
        let study = study.as_ref();
        study
            .and_then(|s| runs::study_title(s))
            .or_else(|| {
                let s = study?.canonicalize().ok()?;
                s.file_name().map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "comparison".into())
    });
    let c = compare::write(&runs, &out, &title)?;
    print!("{}", c.table.markdown());
    for (path, size) in &c.files {
        eprintln!("wrote {} ({} kB)", path.display(), size.div_ceil(1024));
    }
    Ok(())
}
