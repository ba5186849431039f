//! `gankit cache list | verify | clear`: the decoded-image caches of image folders
//! (`gankit::data::cache`), kept in `$GANKIT_HOME/data-cache` (else ~/.local/share/gankit/data-cache).

use clap::Subcommand;
use gankit::data::cache;
use gankit::{Error, Result};

#[derive(Subcommand)]
pub enum CacheCommand {
    /// List the caches: file, size on disk, images, side and channels, source folder.
    List,
    /// Check every block of every cache (opening a cache checks a sample of them).
    Verify,
    /// Remove caches: the named files, or all of them (and unfinished builds).
    Clear {
        /// Cache file names as `gankit cache list` shows them (default: all).
        names: Vec<String>,
    },
}

pub fn run(command: CacheCommand) -> Result<()> {
    let dir = cache::dir();
    let entries = cache::list(&dir)?;
    match command {
        CacheCommand::List => {
            if entries.is_empty() {
                println!("no caches in {}", dir.display());
            }
            for e in &entries {
                println!("{}", describe(e, e.header.clone()));
            }
            let total: u64 = entries.iter().map(|e| e.bytes).sum();
            println!("{} in {}", megabytes(total), dir.display());
        }
        CacheCommand::Verify => {
            let mut bad = 0;
            for e in &entries {
                let checked = cache::verify(&e.path);
                bad += usize::from(checked.is_err());
                println!("{}", describe(e, checked));
            }
            if bad > 0 {
                return Err(Error::Data(format!(
                    "{bad} damaged cache(s): the next run over their folder rebuilds them, or remove them with gankit cache clear"
                )));
            }
        }
        CacheCommand::Clear { names } => {
            let known = |n: &String| entries.iter().any(|e| file_name(e) == *n);
            if let Some(unknown) = names.iter().find(|n| !known(n)) {
                return Err(Error::Data(format!(
                    "no cache named {unknown} in {} (see gankit cache list)",
                    dir.display()
                )));
            }
            let mut freed = 0;
            for e in entries
                .iter()
                .filter(|e| names.is_empty() || names.contains(&file_name(e)))
            {
                cache::remove(e)?;
                freed += e.bytes;
                println!("removed {}", file_name(e));
            }
            println!("freed {}", megabytes(freed));
        }
    }
    Ok(())
}

fn file_name(e: &cache::Entry) -> String {
    e.path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn describe(e: &cache::Entry, header: std::result::Result<cache::Header, String>) -> String {
    let what = match header {
        Ok(h) => format!(
            "{} images {}×{}×{}{}  from {}",
            h.count,
            h.size,
            h.size,
            h.channels,
            h.classes
                .map(|c| format!(", {} classes", c.len()))
                .unwrap_or_default(),
            h.source
        ),
        Err(why) => format!("damaged: {why}"),
    };
    format!("{}  {}  {what}", file_name(e), megabytes(e.bytes))
}
