//! Sample grids: a batch of images in [-1, 1] tiled into one PNG.

use std::path::Path;

use image::{DynamicImage, GenericImage};

use crate::data::images::planes_to_image;
use crate::{Error, Result};

/// Columns of the grid of `n` images: ⌈√n⌉.
pub fn columns(n: usize) -> usize {
    (n as f64).sqrt().ceil().max(1.0) as usize
}

/// Tile `n` images (n, C, H, W) in [-1, 1] into a roughly square grid with a 2-pixel border.
pub fn grid_image(data: &[f32], n: usize, channels: usize, size: usize) -> DynamicImage {
    grid_image_columns(data, n, columns(n), channels, size)
}

/// Tile `n` images into a grid of `cols` columns.
pub fn grid_image_columns(
    data: &[f32],
    n: usize,
    cols: usize,
    channels: usize,
    size: usize,
) -> DynamicImage {
    let cols = cols.max(1);
    let rows = n.div_ceil(cols).max(1);
    let pad = 2;
    let (w, h) = (cols * (size + pad) + pad, rows * (size + pad) + pad);
    let mut canvas = if channels == 1 {
        DynamicImage::new_luma8(w as u32, h as u32)
    } else {
        DynamicImage::new_rgb8(w as u32, h as u32)
    };
    let per = channels * size * size;
    for i in 0..n {
        let bytes: Vec<u8> = data[i * per..(i + 1) * per]
            .iter()
            .map(|v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8)
            .collect();
        let img = planes_to_image(&bytes, channels, size, size);
        let (x, y) = (
            (i % cols) * (size + pad) + pad,
            (i / cols) * (size + pad) + pad,
        );
        canvas
            .copy_from(&img, x as u32, y as u32)
            .expect("the canvas is sized for every tile");
    }
    canvas
}

/// Write a grid PNG (atomically).
pub fn write_png(path: &Path, data: &[f32], n: usize, channels: usize, size: usize) -> Result<()> {
    write_png_columns(path, data, n, columns(n), channels, size)
}

/// Write a grid PNG of `cols` columns (atomically).
pub fn write_png_columns(
    path: &Path,
    data: &[f32],
    n: usize,
    cols: usize,
    channels: usize,
    size: usize,
) -> Result<()> {
    write_image(path, &grid_image_columns(data, n, cols, channels, size))
}

/// Write an image as PNG (atomically).
pub fn write_image(path: &Path, img: &DynamicImage) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::Run(format!("cannot encode {}: {e}", path.display())))?;
    crate::fsutil::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_the_expected_size_and_pixels() {
        let data = vec![1.0f32; 5 * 3 * 4 * 4];
        let img = grid_image(&data, 5, 3, 4);
        // 3 columns, 2 rows of 4-pixel tiles with 2-pixel borders.
        assert_eq!((img.width(), img.height()), (20, 14));
        let rgb = img.to_rgb8();
        assert_eq!(rgb.get_pixel(2, 2).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(0, 0).0, [0, 0, 0]);
    }
}
