//! A set of square images, stored as bytes (N, C, H, W), and the conversions
//! every source goes through: resize, grayscale / RGB, scaling to [-1, 1].

use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, RgbImage};

/// Decoded training images, all of one size and channel count.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Pixels, (N, C, H, W) row-major, 0..=255: in memory or memory-mapped.
    pub pixels: super::Pixels,
    pub len: usize,
    pub channels: usize,
    pub size: usize,
    /// One class label per image, when the source has them.
    pub labels: Option<Vec<u8>>,
    /// Human-readable origin ("embedded Fashion-MNIST test split", a path, ...).
    pub source: String,
}

impl ImageSet {
    /// Bytes in one image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Write image `i`, scaled to [-1, 1], into `out` (length `image_len`). Fails only for a
    /// streamed set whose file does not decode.
    pub fn write_scaled(&self, i: usize, out: &mut [f32]) -> crate::Result<()> {
        let n = self.image_len();
        for (o, &p) in out.iter_mut().zip(self.pixels.image(i, n)?.iter()) {
            *o = p as f32 / 127.5 - 1.0;
        }
        Ok(())
    }
}

/// Centre-crop an image to a square and resize it to `size`, as `channels` (1 or 3)
/// planes in C, H, W order.
pub fn square_planes(img: &DynamicImage, size: usize, channels: usize) -> Vec<u8> {
    let (w, h) = (img.width(), img.height());
    let side = w.min(h);
    let cropped = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let resized = if side as usize == size {
        cropped
    } else {
        cropped.resize_exact(size as u32, size as u32, FilterType::Triangle)
    };
    if channels == 1 {
        resized.to_luma8().into_raw()
    } else {
        let rgb = resized.to_rgb8();
        let mut planes = vec![0u8; 3 * size * size];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                planes[c * size * size + i] = p[c];
            }
        }
        planes
    }
}

/// Turn one grayscale image (rows × cols bytes) into `channels` planes of `size` × `size`.
pub fn gray_to_planes(
    raw: &[u8],
    rows: usize,
    cols: usize,
    size: usize,
    channels: usize,
) -> Vec<u8> {
    let gray = GrayImage::from_raw(cols as u32, rows as u32, raw.to_vec())
        .expect("the caller passes rows × cols bytes");
    if rows == size && cols == size && channels == 1 {
        return gray.into_raw();
    }
    square_planes(&DynamicImage::ImageLuma8(gray), size, channels)
}

/// Build a `DynamicImage` from (C, H, W) planes in [0, 255]; used to write grids.
pub fn planes_to_image(planes: &[u8], channels: usize, h: usize, w: usize) -> DynamicImage {
    if channels == 1 {
        DynamicImage::ImageLuma8(GrayImage::from_raw(w as u32, h as u32, planes.to_vec()).unwrap())
    } else {
        let mut rgb = RgbImage::new(w as u32, h as u32);
        for (i, p) in rgb.pixels_mut().enumerate() {
            for c in 0..3 {
                p[c] = planes[c * h * w + i];
            }
        }
        DynamicImage::ImageRgb8(rgb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_maps_bytes_to_minus_one_one() {
        let s = ImageSet {
            pixels: vec![0, 255, 128, 64].into(),
            len: 1,
            channels: 1,
            size: 2,
            labels: None,
            source: "t".into(),
        };
        let mut out = [0f32; 4];
        s.write_scaled(0, &mut out).unwrap();
        assert_eq!(out[0], -1.0);
        assert_eq!(out[1], 1.0);
        assert!((out[2] - 0.003_921_6).abs() < 1e-6);
    }

    #[test]
    fn crop_and_resize_give_square_planes() {
        // A 6×4 RGB image: centre crop 4×4, resize to 2×2, RGB planes.
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(6, 4, image::Rgb([10, 20, 30])));
        let p = square_planes(&img, 2, 3);
        assert_eq!(p, vec![10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30]);
        let g = square_planes(&img, 2, 1);
        assert_eq!(g.len(), 4);
        let gray = gray_to_planes(&[0, 255, 255, 0], 2, 2, 2, 3);
        assert_eq!(gray.len(), 12);
    }
}
