//! The best one-to-one assignment of rows to columns (Kuhn 1955, Munkres 1957: the
//! Hungarian algorithm in its O(n³) shortest-augmenting-path form), used to map InfoGAN's
//! categorical code values to the classes they found.

/// The assignment of rows to distinct columns that maximises the sum of `weight[r][c]`
/// (a rectangular matrix is padded with zeros). Returns the sum and, for each row, its
/// column (`None` for rows left without one when there are more rows than columns).
pub fn max_weight_matching(weight: &[Vec<f64>]) -> (f64, Vec<Option<usize>>) {
    let rows = weight.len();
    let cols = weight.iter().map(Vec::len).max().unwrap_or(0);
    let n = rows.max(cols);
    if n == 0 {
        return (0.0, vec![]);
    }
    let w = |r: usize, c: usize| {
        weight
            .get(r)
            .and_then(|row| row.get(c))
            .copied()
            .unwrap_or(0.0)
    };
    let top = (0..rows)
        .flat_map(|r| (0..cols).map(move |c| (r, c)))
        .map(|(r, c)| w(r, c))
        .fold(0f64, f64::max);
    // Minimise cost = top − weight over an n × n matrix, 1-based as in the classic form.
    let cost = |r: usize, c: usize| top - w(r - 1, c - 1);
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut min = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let (i0, mut delta, mut j1) = (p[j0], f64::INFINITY, 0);
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0, j) - u[i0] - v[j];
                    if cur < min[j] {
                        min[j] = cur;
                        way[j] = j0;
                    }
                    if min[j] < delta {
                        delta = min[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    min[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut of_row = vec![None; rows];
    for (j, &i) in p.iter().enumerate().skip(1) {
        if i >= 1 && i <= rows && j <= cols {
            of_row[i - 1] = Some(j - 1);
        }
    }
    let total = of_row
        .iter()
        .enumerate()
        .filter_map(|(r, c)| c.map(|c| w(r, c)))
        .sum();
    (total, of_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every permutation, for small matrices.
    fn brute(weight: &[Vec<f64>]) -> f64 {
        fn go(w: &[Vec<f64>], r: usize, used: &mut Vec<bool>) -> f64 {
            if r == w.len() {
                return 0.0;
            }
            let mut best = go(w, r + 1, used); // row r unassigned (more rows than columns)
            for c in 0..used.len() {
                if !used[c] {
                    used[c] = true;
                    best = best.max(w[r][c] + go(w, r + 1, used));
                    used[c] = false;
                }
            }
            best
        }
        go(weight, 0, &mut vec![false; weight[0].len()])
    }

    #[test]
    fn matches_brute_force_on_random_matrices() {
        let mut rng = crate::rng::Rng::new(5, 0);
        for (rows, cols) in [(3, 3), (5, 5), (4, 6), (6, 4), (7, 7)] {
            for _ in 0..20 {
                let w: Vec<Vec<f64>> = (0..rows)
                    .map(|_| (0..cols).map(|_| (rng.uniform() * 100.0).floor()).collect())
                    .collect();
                let (total, rows_of) = max_weight_matching(&w);
                assert_eq!(total, brute(&w), "{w:?}");
                let mut seen: Vec<usize> = rows_of.iter().flatten().copied().collect();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), rows.min(cols), "distinct columns");
            }
        }
        let (t, m) = max_weight_matching(&[vec![0.0, 9.0], vec![8.0, 1.0]]);
        assert_eq!((t, m), (17.0, vec![Some(1), Some(0)]));
    }
}
