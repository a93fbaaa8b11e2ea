//! One safe entry to the `gemm` crate's f32 matrix multiply (the kernels candle
//! itself uses), with strides, so that a frozen layer multiplies a dequantized
//! tile straight into its output (or accumulates into it) without the copies,
//! tile-sized temporaries and sums that going through candle tensors costs.

use gemm::Parallelism;

/// Below this many multiply-adds one thread does the product (waking the
/// others costs more than it saves).
const PARALLEL_MIN: usize = 1 << 18;

/// `dst[i*dst_rs + j] (+)= sum_p lhs[i*lhs.0 + p*lhs.1] * rhs[p*rhs.0 + j*rhs.1]`
/// for `i < m`, `j < n`, `p < k`; `(rs, cs)` are row and column strides.
/// With `accumulate` the product is added to `dst`, otherwise it replaces it.
///
/// Panics if a stride reaches outside its slice (a bug in the caller, never
/// an effect of user input).
#[allow(clippy::too_many_arguments)]
pub fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], dst_rs: usize, accumulate: bool, lhs: &[f32], lhs_s: (usize, usize), rhs: &[f32], rhs_s: (usize, usize)) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_rs + n <= dst.len(), "gemm: destination too small");
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst[i * dst_rs..i * dst_rs + n].fill(0.0);
            }
        }
        return;
    }
    assert!((m - 1) * lhs_s.0 + (k - 1) * lhs_s.1 < lhs.len(), "gemm: left operand too small");
    assert!((k - 1) * rhs_s.0 + (n - 1) * rhs_s.1 < rhs.len(), "gemm: right operand too small");
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 && m * n * k >= PARALLEL_MIN { Parallelism::Rayon(threads) } else { Parallelism::None };
    // SAFETY: every index the product touches was bounds-checked above; `dst`
    // is borrowed mutably and the operands immutably, so they do not alias.
    // gemm's naming: dst = alpha * dst + beta * lhs * rhs (alpha read only
    // when `read_dst`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_s.1 as isize,
            lhs_s.0 as isize,
            rhs.as_ptr(),
            rhs_s.1 as isize,
            rhs_s.0 as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, lhs: &[f32], ls: (usize, usize), rhs: &[f32], rs: (usize, usize)) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| lhs[i * ls.0 + p * ls.1] * rhs[p * rs.0 + j * rs.1]).sum();
            }
        }
        out
    }

    #[test]
    fn strided_products_and_accumulation_match_a_naive_loop() {
        let (m, n, k) = (70, 90, 130);
        let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
        // rhs read transposed: element (p, j) at j*k + p.
        for (ls, rs) in [((k, 1), (n, 1)), ((k, 1), (1, k)), ((1, m), (n, 1))] {
            let want = naive(m, n, k, &lhs, ls, &rhs, rs);
            // Written into the middle columns of a wider destination.
            let width = n + 5;
            let mut dst = vec![3f32; m * width];
            matmul(m, n, k, &mut dst[2..], width, false, &lhs, ls, &rhs, rs);
            for i in 0..m {
                assert_eq!(dst[i * width], 3.0);
                for j in 0..n {
                    let got = dst[i * width + 2 + j];
                    assert!((got - want[i * n + j]).abs() < 1e-3, "({i},{j}): {got} vs {}", want[i * n + j]);
                }
            }
            matmul(m, n, k, &mut dst[2..], width, true, &lhs, ls, &rhs, rs);
            for i in 0..m {
                for j in 0..n {
                    assert!((dst[i * width + 2 + j] - 2.0 * want[i * n + j]).abs() < 2e-3);
                }
            }
        }
    }
}
