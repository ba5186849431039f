//! Writes a folder of face-sized JPEGs for measuring the data pipeline at CelebA's scale
//! (`scripts/make_faces.sh`): N images of CelebA's aligned crops' size, 178×218, RGB,
//! quality 90, about CelebA's bytes per file. Each image is a seeded composition of a
//! shaded background, a head-like ellipse with eyes and a mouth, and pixel noise, so JPEG
//! has real work to do decoding it. The same N and seed give the same bytes. `--gray` writes
//! them as 8-bit grayscale JPEGs, standing in for report 000's CUFS sketches.
//!
//!     cargo run --release -p gankit --example make_faces -- OUT_DIR N [SEED] [--gray]

use std::path::PathBuf;

use image::codecs::jpeg::JpegEncoder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const W: u32 = 178;
const H: u32 = 218;

fn face(seed: u64) -> image::RgbImage {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    let bg = [
        r.random_range(40..220u8),
        r.random_range(40..220),
        r.random_range(40..220),
    ];
    let skin = [
        r.random_range(150..240u8),
        r.random_range(100..200),
        r.random_range(80..170),
    ];
    let (cx, cy) = (
        W as f32 / 2.0 + r.random_range(-8.0..8.0),
        H as f32 / 2.0 + r.random_range(-8.0..8.0),
    );
    let (rx, ry) = (r.random_range(45.0..60.0f32), r.random_range(60.0..80.0f32));
    let eye_y = cy - ry * 0.2;
    let mut img = image::RgbImage::new(W, H);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let shade = fy / H as f32;
        let mut c = bg.map(|v| v as f32 * (0.7 + 0.3 * shade));
        if ((fx - cx) / rx).powi(2) + ((fy - cy) / ry).powi(2) < 1.0 {
            let light = 1.0 - 0.25 * ((fx - cx) / rx);
            c = skin.map(|v| v as f32 * light);
            for ex in [cx - rx * 0.4, cx + rx * 0.4] {
                if ((fx - ex) / 8.0).powi(2) + ((fy - eye_y) / 5.0).powi(2) < 1.0 {
                    c = [30.0, 25.0, 20.0];
                }
            }
            if ((fx - cx) / (rx * 0.35)).powi(2) + ((fy - (cy + ry * 0.45)) / 6.0).powi(2) < 1.0 {
                c = [150.0, 40.0, 50.0];
            }
        }
        let noise = r.random_range(-4.0..4.0f32);
        *p = image::Rgb(c.map(|v| (v + noise).clamp(0.0, 255.0) as u8));
    }
    img
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let gray = args.iter().any(|a| a == "--gray");
    args.retain(|a| a != "--gray");
    if args.len() < 2 || args.len() > 3 {
        eprintln!("usage: make_faces OUT_DIR N [SEED] [--gray]");
        std::process::exit(2);
    }
    let out = PathBuf::from(&args[0]);
    let n: u64 = args[1].parse().expect("N is a count");
    let seed: u64 = args
        .get(2)
        .map_or(0, |s| s.parse().expect("SEED is a number"));
    std::fs::create_dir_all(&out).expect("the output folder can be created");
    let started = std::time::Instant::now();
    let bytes: u64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut buf = Vec::new();
            let img = face(seed.wrapping_mul(1_000_003).wrapping_add(i));
            let mut encoder = JpegEncoder::new_with_quality(&mut buf, 90);
            if gray {
                encoder.encode_image(&image::DynamicImage::ImageRgb8(img).to_luma8())
            } else {
                encoder.encode_image(&img)
            }
            .expect("JPEG encodes");
            std::fs::write(out.join(format!("{:06}.jpg", i + 1)), &buf).expect("written");
            buf.len() as u64
        })
        .sum();
    eprintln!(
        "wrote {n} images, {:.1} MB, in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
}
