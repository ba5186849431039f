//! pytorch-fid's statistics files: a NumPy `.npz` (a zip of `.npy` arrays, stored or
//! deflated) holding `mu` (d) and `sigma` (d × d), the mean and covariance of a set's
//! Inception features. Published reference statistics come in this form, and
//! `pytorch-fid A.npz B.npz` compares two of them; gankit reads and writes it
//! (`gankit eval --stats FILE.npz`, `--save-stats DIR`).

use std::io::{Read, Write};
use std::path::Path;

use nalgebra::{DMatrix, DVector};

use crate::metrics::GaussianStats;
use crate::report::npy;
use crate::{Error, Result};

/// Read `mu` and `sigma` (float32 or float64) from the `.npz` at `path`.
pub fn read(path: &Path) -> Result<GaussianStats> {
    let shown = path.display();
    let bad = |e: zip::result::ZipError| {
        Error::Data(format!(
            "{shown} is not a NumPy .npz file ({e}): give pytorch-fid's statistics file (mu, sigma)"
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    let mut array = |name: &str| -> Result<npy::NpyArray> {
        let mut member = archive.by_name(&format!("{name}.npy")).map_err(|_| {
            Error::Data(format!(
                "{shown} holds no array named {name}: pytorch-fid's statistics files hold mu and sigma"
            ))
        })?;
        // Bounded by the zip's own record of the member's size.
        let mut bytes = Vec::with_capacity(member.size().min(1 << 30) as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Data(format!("{shown}: {name}.npy cannot be read: {e}")))?;
        npy::decode(bytes, &format!("{shown}: {name}"))
    };
    let mu = array("mu")?;
    let sigma = array("sigma")?;
    let d = mu.len();
    if mu.shape != [d] || sigma.shape != [d, d] || d == 0 {
        return Err(Error::Data(format!(
            "{shown}: mu has shape {:?} and sigma {:?}; statistics need mu (d) and sigma (d, d)",
            mu.shape, sigma.shape
        )));
    }
    let (mean, cov) = (mu.to_f64(), sigma.to_f64());
    if mean.iter().chain(&cov).any(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "{shown}: mu or sigma holds NaN or infinite values"
        )));
    }
    Ok(GaussianStats {
        mean: DVector::from_vec(mean),
        cov: DMatrix::from_row_slice(d, d, &cov),
    })
}

/// Write `stats` to `path` as pytorch-fid's `save_fid_stats` does (`np.savez_compressed`,
/// float64), through a temporary file.
pub fn write(path: &Path, stats: &GaussianStats) -> Result<()> {
    let d = stats.mean.len();
    let cov: Vec<f64> = stats.cov.transpose().iter().copied().collect();
    let members = [
        ("mu.npy", npy::encode_f64(stats.mean.as_slice(), &[d])),
        ("sigma.npy", npy::encode_f64(&cov, &[d, d])),
    ];
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut buffer);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    let failed =
        |e: &dyn std::fmt::Display| Error::Run(format!("cannot build {}: {e}", path.display()));
    for (name, bytes) in &members {
        z.start_file(*name, opts).map_err(|e| failed(&e))?;
        z.write_all(bytes).map_err(|e| failed(&e))?;
    }
    z.finish().map_err(|e| failed(&e))?;
    crate::fsutil::write_atomic(path, &buffer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stats.npz` and `stats_f32.npz` were written by NumPy (`fixtures/make_stats.py`),
    /// compressed and stored.
    #[test]
    fn numpys_files_are_read() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/evaluator/fixtures");
        let want_mu = [0.5, -1.25, 3.0];
        let want_sigma = [[2.0, 0.5, 0.0], [0.5, 1.0, -0.25], [0.0, -0.25, 4.0]];
        for file in ["stats_compressed.npz", "stats_stored_f32.npz"] {
            let s = read(&dir.join(file)).unwrap();
            for (i, row) in want_sigma.iter().enumerate() {
                assert!((s.mean[i] - want_mu[i]).abs() < 1e-7, "{file}");
                for (j, want) in row.iter().enumerate() {
                    assert!((s.cov[(i, j)] - want).abs() < 1e-7, "{file}");
                }
            }
        }
    }

    #[test]
    fn written_files_read_back_exactly_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let stats = GaussianStats {
            mean: DVector::from_vec(vec![0.1, -0.2]),
            cov: DMatrix::from_row_slice(2, 2, &[1.0, 0.3, 0.3, 2.0 / 3.0]),
        };
        let path = dir.path().join("s.npz");
        write(&path, &stats).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(
            (back.mean, back.cov),
            (stats.mean.clone(), stats.cov.clone())
        );

        let npy_only = dir.path().join("mu.npy");
        npy::write_f32(&npy_only, &[1.0], &[1]).unwrap();
        let e = read(&npy_only).unwrap_err().to_string();
        assert!(e.contains("not a NumPy .npz"), "{e}");

        let mut z = zip::ZipWriter::new(std::fs::File::create(dir.path().join("m.npz")).unwrap());
        z.start_file("mu.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&npy::encode_f64(&[1.0, 2.0], &[2])).unwrap();
        z.start_file("sigma.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(&npy::encode_f64(&[1.0, 2.0, 3.0], &[3]))
            .unwrap();
        z.finish().unwrap();
        let e = read(&dir.path().join("m.npz")).unwrap_err().to_string();
        assert!(e.contains("mu (d) and sigma (d, d)"), "{e}");
    }
}
