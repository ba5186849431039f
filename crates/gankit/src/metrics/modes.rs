//! Mode coverage: which classes a classifier sees in generated samples (report 001's mode
//! collapse, measured).

/// Count of each predicted class among `labels` (classes `0..classes`).
pub fn histogram(labels: &[usize], classes: usize) -> Vec<usize> {
    let mut h = vec![0; classes];
    for &l in labels {
        if l < classes {
            h[l] += 1;
        }
    }
    h
}

/// Classes holding at least `min_share` of the uniform share 1/classes of the samples: with
/// `min_share` = 0.1 and 10 classes, a class is covered from 1% of the samples on.
pub fn covered(hist: &[usize], min_share: f64) -> usize {
    let total: usize = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let threshold = min_share * total as f64 / hist.len() as f64;
    hist.iter()
        .filter(|&&c| c as f64 >= threshold && c > 0)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_is_detected() {
        let balanced: Vec<usize> = (0..1000).map(|i| i % 10).collect();
        assert_eq!(covered(&histogram(&balanced, 10), 0.1), 10);
        let collapsed: Vec<usize> = (0..1000)
            .map(|i| if i < 995 { 3 } else { i % 10 })
            .collect();
        let h = histogram(&collapsed, 10);
        assert_eq!(h[3], 995);
        assert_eq!(covered(&h, 0.1), 1, "5 stray samples are below 1%");
    }
}
