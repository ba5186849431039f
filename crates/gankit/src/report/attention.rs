//! The attention-map figure (Zhang et al. 2019 Fig. 1; report 003 Fig. 8): for each
//! generated image, the image with its query points marked, then one panel per query point
//! showing where the self-attention layer looks from there (its weights over the key
//! positions, brightest where it attends most), drawn over the dimmed image.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::{Error, Result};

/// Colours of the query points, in order.
const COLOURS: [[u8; 3]; 4] = [[255, 60, 60], [60, 200, 60], [70, 120, 255], [255, 200, 0]];

/// The query points of a `side` × `side` map: the four quarter points.
pub fn query_points(side: usize) -> Vec<(usize, usize)> {
    let (a, b) = (side / 4, (3 * side) / 4);
    vec![(a, a), (a, b), (b, a), (b, b)]
}

/// Draw the figure. `images`: n images (n, C, S, S) in [-1, 1]; `maps`: their attention
/// maps (n, side², keys) for a layer at a `side` map whose keys form a `key_side`² grid;
/// `scale`: display pixels per image pixel.
#[allow(clippy::too_many_arguments)]
pub fn write(
    path: &Path,
    images: &[f32],
    n: usize,
    channels: usize,
    size: usize,
    maps: &[f32],
    side: usize,
    key_side: usize,
    scale: usize,
) -> Result<()> {
    let queries = query_points(side);
    let keys = key_side * key_side;
    let tile = size * scale;
    let pad = 4;
    let cols = 1 + queries.len();
    let (w, h) = (cols * (tile + pad) + pad, n * (tile + pad) + pad);
    let mut canvas = RgbImage::from_pixel(w as u32, h as u32, Rgb([255, 255, 255]));
    let per = channels * size * size;
    for i in 0..n {
        let img = &images[i * per..(i + 1) * per];
        // Grey (or colour) value of image pixel (y, x) as RGB.
        let pixel = |y: usize, x: usize| -> [f32; 3] {
            let v = |c: usize| (img[(c * size + y) * size + x].clamp(-1.0, 1.0) + 1.0) * 127.5;
            if channels == 1 {
                [v(0); 3]
            } else {
                [v(0), v(1), v(2)]
            }
        };
        let top = pad + i * (tile + pad);
        for col in 0..cols {
            let left = pad + col * (tile + pad);
            // The panel's weights: the map row of query `col - 1`, scaled to its maximum.
            let weights: Option<Vec<f32>> = (col > 0).then(|| {
                let (qy, qx) = queries[col - 1];
                let row = &maps[(i * side * side + qy * side + qx) * keys..][..keys];
                let max = row.iter().cloned().fold(f32::MIN_POSITIVE, f32::max);
                row.iter().map(|v| v / max).collect()
            });
            for y in 0..tile {
                for x in 0..tile {
                    let (iy, ix) = (y / scale, x / scale);
                    let p = pixel(iy, ix);
                    let rgb = match &weights {
                        None => p,
                        Some(wts) => {
                            let (ky, kx) = (iy * key_side / size, ix * key_side / size);
                            let a = wts[ky * key_side + kx];
                            let grey = 0.3 * (p[0] + p[1] + p[2]) / 3.0;
                            [grey + 0.7 * 255.0 * a, grey + 0.7 * 255.0 * a * 0.8, grey]
                        }
                    };
                    let px = Rgb(rgb.map(|v| v.clamp(0.0, 255.0) as u8));
                    canvas.put_pixel((left + x) as u32, (top + y) as u32, px);
                }
            }
            // Mark the query points: all on the image, its own on each panel.
            let marks: Vec<usize> = if col == 0 {
                (0..queries.len()).collect()
            } else {
                vec![col - 1]
            };
            for q in marks {
                let (qy, qx) = queries[q];
                let (cy, cx) = (
                    ((qy as f32 + 0.5) * size as f32 / side as f32 * scale as f32) as usize,
                    ((qx as f32 + 0.5) * size as f32 / side as f32 * scale as f32) as usize,
                );
                for dy in 0..5usize {
                    for dx in 0..5usize {
                        let (y, x) = ((cy + dy).saturating_sub(2), (cx + dx).saturating_sub(2));
                        if y < tile && x < tile {
                            canvas.put_pixel((left + x) as u32, (top + y) as u32, Rgb(COLOURS[q]));
                        }
                    }
                }
            }
        }
    }
    let mut bytes = Vec::new();
    canvas
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::Run(format!("cannot encode {}: {e}", path.display())))?;
    crate::fsutil::write_atomic(path, &bytes)
}
