//! Parallel loops for the kernels, run on the threads candle's own CPU ops use: the calling
//! thread plus candle's barrier-pool workers.
//!
//! candle 0.11 runs its element-wise ops on that pool, whose workers spin for a while after
//! each op before they sleep. Running gankit's kernels on a second pool (rayon's) put four
//! busy threads on two cores whenever one kind of op followed the other, and the spinning
//! side took time from the working one. Sharing candle's threads keeps one thread per core.
//!
//! Work items are handed out through a shared cursor, so which thread runs an item varies;
//! every kernel writes each item's result to its own place and reduces in item order, so
//! results never depend on scheduling or on the thread count.

use candle_core::utils::barrier_pool;

/// A pointer the work items share; each item touches a disjoint part of what it points to.
struct Shared<T>(*mut T);

// SAFETY: the items dereference disjoint ranges only (see `chunks_mut`).
unsafe impl<T: Send> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// A method, so closures capture the whole wrapper (and its `Sync`), not the raw field.
    fn at(&self, offset: usize) -> *mut T {
        // SAFETY: callers stay within the allocation the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

/// f(i) for every i in 0..n, in parallel.
pub fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    barrier_pool().execute_chunked(n, |items| items.for_each(&f));
}

/// f(i, chunk) for the consecutive chunks of `data` of `size` elements (the last may be
/// shorter), in parallel.
pub fn chunks_mut<T: Send>(data: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let (len, size) = (data.len(), size.max(1));
    let base = Shared(data.as_mut_ptr());
    for_each(len.div_ceil(size), |i| {
        let start = i * size;
        let end = (start + size).min(len);
        // SAFETY: chunk i covers start..end, disjoint from every other chunk and inside
        // `data`, which stays mutably borrowed until every item has finished.
        let chunk = unsafe { std::slice::from_raw_parts_mut(base.at(start), end - start) };
        f(i, chunk);
    });
}

/// A new vector of `len` elements whose chunks of `size` are written in parallel by
/// f(i, chunk), each chunk zeroed first by its own thread (a serial zeroing or copy of the
/// whole output before a parallel pass would leave the other cores idle meanwhile).
pub fn filled<T: Copy + Default + Send>(
    len: usize,
    size: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(len);
    chunks_mut(&mut v.spare_capacity_mut()[..len], size, |i, chunk| {
        for x in chunk.iter_mut() {
            x.write(T::default());
        }
        // SAFETY: every element of the chunk was just initialised.
        let chunk = unsafe { &mut *(chunk as *mut [std::mem::MaybeUninit<T>] as *mut [T]) };
        f(i, chunk);
    });
    // SAFETY: the chunks cover 0..len and each was initialised above.
    unsafe { v.set_len(len) };
    v
}

/// A new `rows × cols` row-major matrix whose blocks of `block` consecutive columns are
/// written in parallel: each block is zeroed by its own thread, then f(first column, block
/// width, pointer to the block's first element) fills it. f must touch only its block: the
/// given width of each of the `rows` rows, which lie `cols` elements apart.
pub fn filled_columns<T: Copy + Default + Send>(
    rows: usize,
    cols: usize,
    block: usize,
    f: impl Fn(usize, usize, *mut T) + Sync,
) -> Vec<T> {
    if rows * cols == 0 {
        return Vec::new();
    }
    let block = block.max(1);
    let mut v: Vec<T> = Vec::with_capacity(rows * cols);
    let base = Shared(v.as_mut_ptr());
    for_each(cols.div_ceil(block), |i| {
        let (j0, width) = (i * block, block.min(cols - i * block));
        for r in 0..rows {
            // SAFETY: row r of this block lies inside the allocation and no other item's.
            let row = unsafe {
                std::slice::from_raw_parts_mut(
                    base.at(r * cols + j0).cast::<std::mem::MaybeUninit<T>>(),
                    width,
                )
            };
            row.iter_mut().for_each(|x| {
                x.write(T::default());
            });
        }
        f(j0, width, base.at(j0));
    });
    // SAFETY: the blocks cover every column of every row, and each was initialised above.
    unsafe { v.set_len(rows * cols) };
    v
}

/// [f(0), …, f(n − 1)], computed in parallel.
pub fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    chunks_mut(&mut out, 1, |i, slot| slot[0] = Some(f(i)));
    out.into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_chunk_is_visited_once_with_its_index() {
        for (len, size) in [(0, 3), (1, 3), (10, 3), (12, 3), (1000, 7), (5, 100)] {
            let mut v = vec![usize::MAX; len];
            chunks_mut(&mut v, size, |i, c| c.iter_mut().for_each(|x| *x = i));
            let want: Vec<usize> = (0..len).map(|j| j / size).collect();
            assert_eq!(v, want, "len {len} size {size}");
        }
        assert_eq!(map(5, |i| i * i), vec![0, 1, 4, 9, 16]);
        let v: Vec<usize> = filled(10, 4, |i, c| c[0] = i + 1);
        assert_eq!(v, [1, 0, 0, 0, 2, 0, 0, 0, 3, 0]);
        assert!(map(0, |i| i).is_empty());
    }

    #[test]
    fn column_blocks_cover_the_matrix_once_each() {
        // 3 × 10 in blocks of 4, 4 and 2 columns: each block marks its own cells.
        let v: Vec<usize> = filled_columns(3, 10, 4, |j0, width, start: *mut usize| {
            for r in 0..3 {
                for j in 0..width {
                    // SAFETY: row r, column j of this block.
                    unsafe { *start.add(r * 10 + j) += 100 * r + j0 + j + 1 };
                }
            }
        });
        let want: Vec<usize> = (0..30).map(|i| 100 * (i / 10) + i % 10 + 1).collect();
        assert_eq!(v, want);
        assert!(filled_columns::<f32>(0, 5, 4, |_, _, _| unreachable!()).is_empty());
    }
}
