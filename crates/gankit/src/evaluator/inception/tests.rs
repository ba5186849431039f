//! Inception-v3 against pytorch-fid's own network with the same synthetic weights
//! (`scripts/reference_inception.py` wrote `fixtures.json`).

use std::path::Path;

use candle_core::{Device, Tensor};

use super::*;

#[derive(serde::Deserialize)]
struct Fixture {
    pool3: Vec<Vec<f64>>,
    logits: Vec<Vec<f64>>,
    resized_row_100: Vec<f64>,
    fid: f64,
    uniform_images: Vec<f64>,
    uniform_fc_weight: Vec<f64>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("fixtures.json")).unwrap()
}

/// The batch the script scores: 3 RGB 32×32 images, image j at contrast (j + 1) / 3.
fn batch() -> Vec<f32> {
    let per = 3 * 32 * 32;
    synthetic::uniform("images", 3 * per)
        .into_iter()
        .enumerate()
        .map(|(k, u)| (u * ((k / per) + 1) as f64 / 3.0) as f32)
        .collect()
}

/// max |a − b| / max(|b|, floor) over matching values.
fn worst_relative(a: &[f32], b: &[f64], floor: f64) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - y).abs() / y.abs().max(floor))
        .fold(0.0, f64::max)
}

#[test]
fn the_generator_matches_the_scripts() {
    let f = fixture();
    // Equal to the last bits; JSON's decimal text is parsed to within an ulp or so.
    for (name, want) in [
        ("images", &f.uniform_images),
        ("fc.weight", &f.uniform_fc_weight),
    ] {
        for (a, b) in synthetic::uniform(name, 4).iter().zip(want) {
            assert!((a - b).abs() < 1e-15, "{name}: {a} vs {b}");
        }
    }
}

#[test]
fn resizing_matches_pytorchs_bilinear_interpolation() {
    let f = fixture();
    let x = prepare(&batch(), 3, 3, 32, &Device::Cpu).unwrap();
    // prepare maps [0, 1] to [−1, 1]; the script kept [0, 1].
    let row: Vec<f32> = x
        .get(0)
        .unwrap()
        .get(1)
        .unwrap()
        .get(100)
        .unwrap()
        .narrow(0, 0, 20)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(|v| (v + 1.0) / 2.0)
        .collect();
    assert!(worst_relative(&row, &f.resized_row_100, 1e-3) < 1e-6);
    // Each output row of the interpolation matrix sums to one.
    let w = resize::weights(28, 299);
    for r in w.chunks(28) {
        assert!((r.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}

#[test]
fn features_and_logits_match_pytorch_fids_network() {
    let f = fixture();
    let net = InceptionV3::new(&synthetic::weights().unwrap()).unwrap();
    let (pool3, logits) = net.forward(&batch(), 3, 3, 32).unwrap();
    let pool3 = pool3.to_vec2::<f32>().unwrap();
    let logits = logits.to_vec2::<f32>().unwrap();
    let mut worst = (0.0f64, 0.0f64);
    for i in 0..3 {
        worst.0 = worst.0.max(worst_relative(&pool3[i], &f.pool3[i], 1e-2));
        worst.1 = worst.1.max(worst_relative(&logits[i], &f.logits[i], 1e-2));
    }
    eprintln!(
        "worst relative difference: pool3 {:.2e}, logits {:.2e}",
        worst.0, worst.1
    );
    assert!(worst.0 < 1e-4 && worst.1 < 1e-4, "{worst:?}");
    // The features differ between images far beyond that tolerance: the check could not
    // pass with a network that gives every image the same features.
    let spread: f64 = (0..layout::FEATURES)
        .map(|d| {
            let v: Vec<f64> = (0..3).map(|i| f.pool3[i][d]).collect();
            let m = v.iter().sum::<f64>() / 3.0;
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt()
        })
        .sum::<f64>()
        / f.pool3.iter().flatten().map(|v| v.abs()).sum::<f64>()
        * 3.0;
    assert!(spread > 0.02, "relative spread {spread}");
}

#[test]
fn fid_on_2048_features_matches_pytorch_fid() {
    let f = fixture();
    let (n, d) = (2100, 2048);
    let a = synthetic::uniform("fid-a", n * d);
    let b = synthetic::uniform("fid-b", n * d);
    let a = nalgebra::DMatrix::from_row_iterator(n, d, a.iter().map(|u| 2.0 * u - 1.0));
    let b = nalgebra::DMatrix::from_row_iterator(
        n,
        d,
        b.iter()
            .enumerate()
            .map(|(k, u)| 1.5 * (2.0 * u - 1.0) + 0.2 * (k % d) as f64 / d as f64),
    );
    let fid = crate::metrics::fid(&a, &b);
    let rel = (fid - f.fid).abs() / f.fid;
    eprintln!(
        "FID {fid} against pytorch-fid's {}: {rel:.2e} relative",
        f.fid
    );
    assert!(rel < 1e-3, "{fid} vs {}", f.fid);
}

#[test]
fn a_missing_or_misshapen_tensor_is_named() {
    let mut w = synthetic::weights().unwrap();
    w.remove("Mixed_6b.branch7x7_2.conv.weight");
    let e = InceptionV3::new(&w).err().unwrap().to_string();
    assert!(e.contains("Mixed_6b.branch7x7_2.conv.weight"), "{e}");
    let mut w = synthetic::weights().unwrap();
    w.insert(
        "fc.bias".into(),
        Tensor::zeros(7, candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let e = InceptionV3::new(&w).err().unwrap().to_string();
    assert!(e.contains("fc.bias") && e.contains("[7]"), "{e}");
}

#[test]
fn imported_weights_are_checked_stored_and_loaded_with_their_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    // Without weights: one line saying how to get them.
    let e = store::load(&home).err().unwrap().to_string();
    assert!(
        e.contains("convert_inception.py") && e.contains("import-inception"),
        "{e}"
    );
    // A .pth is sent to the converter.
    let e = store::import(&home, Path::new("w.pth"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("convert_inception.py"), "{e}");

    let mut w = synthetic::weights().unwrap();
    // The auxiliary head the FID network does not use is left out.
    w.insert(
        "AuxLogits.fc.weight".into(),
        Tensor::zeros((1000, 768), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let file = tmp.path().join("w.safetensors");
    crate::checkpoint::write_safetensors(&file, &w).unwrap();
    let info = store::import(&home, &file).unwrap();
    assert_eq!(info.tensors, layout::tensors().len());
    let (net, loaded) = store::load(&home).unwrap();
    assert_eq!(loaded, info);
    let direct = InceptionV3::new(&synthetic::weights().unwrap()).unwrap();
    let x = prepare(&batch()[..3 * 32 * 32], 1, 3, 32, &Device::Cpu).unwrap();
    let a = net
        .forward_prepared(&x)
        .unwrap()
        .0
        .to_vec2::<f32>()
        .unwrap();
    let b = direct
        .forward_prepared(&x)
        .unwrap()
        .0
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(a, b);

    // A changed stored file is refused; a file lacking a tensor is not imported.
    let path = store::weights_path(&home);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let e = store::load(&home).err().unwrap().to_string();
    assert!(e.contains("does not match the hash"), "{e}");
    w.remove("Mixed_7c.branch_pool.bn.running_var");
    crate::checkpoint::write_safetensors(&file, &w).unwrap();
    let e = store::import(&home, &file).err().unwrap().to_string();
    assert!(e.contains("Mixed_7c.branch_pool.bn.running_var"), "{e}");
}
