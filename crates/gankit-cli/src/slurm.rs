//! `gankit sweep STUDY.toml --slurm`: the study's unfinished runs as one Slurm array job,
//! one run per array task, each task `gankit sweep … --member INDEX` (train or resume, then
//! evaluate), and a `gankit compare` job that waits for the array. The study folder must
//! be on a file system the nodes share; so must the gankit binary and the data.
//!
//! Tasks are `--requeue`d: a preempted task starts again and its run resumes from its last
//! checkpoint (gankit saves one when Slurm's SIGTERM arrives). A cancelled task is
//! resubmitted by running the same `--slurm` command again: finished runs are left out of
//! the new array.

use std::path::{Path, PathBuf};
use std::process::Command;

use gankit::{Error, Result};

/// What the scripts need to know.
pub struct Submission<'a> {
    /// The study folder (absolute).
    pub dir: &'a Path,
    /// The study file (absolute).
    pub study: &'a Path,
    pub scale: &'a str,
    pub title: &'a str,
    /// Indices in the plan of the runs to train.
    pub members: &'a [usize],
    pub threads: usize,
    /// Extra `#SBATCH` options, e.g. `--partition=gpu`, `--time=24:00:00`.
    pub options: &'a [String],
}

/// `s` quoted for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn path_quoted(p: &Path) -> String {
    quote(&p.to_string_lossy())
}

fn header(name: &str, log: &Path, cpus: usize, options: &[String]) -> String {
    let mut s = format!(
        "#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --output={}\n#SBATCH --open-mode=append\n",
        log.display()
    );
    for o in options {
        s.push_str(&format!("#SBATCH {o}\n"));
    }
    s
}

/// The array job's script: one task per run in `members`.
pub fn array_script(sub: &Submission, exe: &Path, cwd: &Path) -> String {
    let list: Vec<String> = sub.members.iter().map(|i| i.to_string()).collect();
    let mut s = header(
        "gankit-sweep",
        &sub.dir.join("logs/slurm-%A_%a.out"),
        sub.threads,
        sub.options,
    );
    s.push_str(&format!(
        "#SBATCH --array={}\n#SBATCH --requeue\n",
        list.join(",")
    ));
    s.push_str(&format!(
        "# {} ({}): run INDEX of the plan in {}/study.json, resumed if it was interrupted\ncd {}\nexec {} sweep {} --scale {} --out {} --threads {} --member \"$SLURM_ARRAY_TASK_ID\"\n",
        sub.title,
        sub.scale,
        sub.dir.display(),
        path_quoted(cwd),
        path_quoted(exe),
        path_quoted(sub.study),
        sub.scale,
        path_quoted(sub.dir),
        sub.threads,
    ));
    s
}

/// The comparison job's script, run once the array has ended.
pub fn compare_script(sub: &Submission, exe: &Path, cwd: &Path) -> String {
    let mut s = header(
        "gankit-compare",
        &sub.dir.join("logs/slurm-compare-%j.out"),
        1,
        sub.options,
    );
    s.push_str(&format!(
        "cd {}\nexec {} compare {} --title {}\n",
        path_quoted(cwd),
        path_quoted(exe),
        path_quoted(sub.dir),
        quote(sub.title),
    ));
    s
}

/// What [`submit`] did.
pub struct Submitted {
    /// The array job's script and the comparison job's.
    pub scripts: [PathBuf; 2],
    /// The two jobs' ids, where `sbatch` ran.
    pub jobs: Option<(String, String)>,
}

/// Write both scripts under `DIR/slurm/` and, where `sbatch` runs, submit them (the
/// comparison after the array, `afterany`).
pub fn submit(sub: &Submission) -> Result<Submitted> {
    let exe = std::env::current_exe().map_err(|e| Error::io("the gankit binary", e))?;
    let cwd = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    let folder = sub.dir.join("slurm");
    std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let array = folder.join("array.sbatch");
    let compare = folder.join("compare.sbatch");
    for (path, text) in [
        (&array, array_script(sub, &exe, &cwd)),
        (&compare, compare_script(sub, &exe, &cwd)),
    ] {
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    }
    let scripts = [array.clone(), compare.clone()];
    let sbatch_runs = Command::new("sbatch")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !sbatch_runs {
        return Ok(Submitted {
            scripts,
            jobs: None,
        });
    }
    let array_id = sbatch(&[], &array)?;
    let compare_id = sbatch(&[format!("--dependency=afterany:{array_id}")], &compare)?;
    Ok(Submitted {
        scripts,
        jobs: Some((array_id, compare_id)),
    })
}

/// Submit `script`; the job id.
fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let o = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .map_err(|e| Error::io("sbatch", e))?;
    let out = String::from_utf8_lossy(&o.stdout);
    let id = out.trim().split(';').next().unwrap_or("").to_string();
    if !o.status.success() || id.is_empty() {
        return Err(Error::Run(format!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_names_only_the_unfinished_runs_and_quotes_paths() {
        let options = ["--partition=short".to_string()];
        let sub = Submission {
            dir: Path::new("/shared/runs/it's"),
            study: Path::new("/shared/s.toml"),
            scale: "reduced",
            title: "a study",
            members: &[0, 2, 5],
            threads: 4,
            options: &options,
        };
        let s = array_script(&sub, Path::new("/opt/gankit"), Path::new("/shared"));
        assert!(s.starts_with("#!/bin/bash\n"));
        for line in [
            "#SBATCH --array=0,2,5",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --requeue",
            "#SBATCH --partition=short",
            "#SBATCH --output=/shared/runs/it's/logs/slurm-%A_%a.out",
            "exec '/opt/gankit' sweep '/shared/s.toml' --scale reduced --out '/shared/runs/it'\\''s' --threads 4 --member \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} not in\n{s}");
        }
        let c = compare_script(&sub, Path::new("/opt/gankit"), Path::new("/shared"));
        assert!(c.contains("exec '/opt/gankit' compare '/shared/runs/it'\\''s' --title 'a study'"));
    }
}
