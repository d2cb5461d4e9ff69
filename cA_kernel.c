/* The C body of cA_kernel.CAEStep: one SGD step of the contractive
 * auto-encoder, in place, in three passes over W.
 *
 * cA_kernel.py has the derivation; the equation numbers (1)-(10) are those
 * of cA.cA's docstring and cA.cA.get_fused_cost_updates' docstring. Sizes:
 * B examples in the minibatch, V visible units (rows of W), H hidden units
 * (columns of W). All arrays are C-ordered (row-major).
 *
 * This file is the Op's support code. The Python side pastes it twice,
 * once with `real` = double and GEMM = dgemm_ and once with `real` = float
 * and GEMM = sgemm_; FN(name) gives each copy's functions their own names
 * (name_f64, name_f32). The BLAS is the stack's own, through the Fortran
 * interface that blas_header_text() declares, so it is whatever the stack
 * links: MKL, OpenBLAS, or NumPy's C-API fallback.
 */

/* ---- row-major GEMM on a column-major BLAS -------------------------------
 *
 * C (m x n, row stride ldc) = alpha op(A) op(B) + beta C, with op(A) m x k
 * and op(B) k x n, every matrix row-major. Fortran BLAS is column-major,
 * and a row-major m x n array with row stride ld is, read column-major, its
 * own transpose (n x m, leading dimension ld). So C = op(A) op(B) is asked
 * for as C^T = op(B)^T op(A)^T: the operands and the sizes m, n swap, and
 * each transpose flag stays with its operand.
 */
static void FN(gemm_rows)(char ta, char tb, int m, int n, int k, real alpha,
                          const real *A, int lda, const real *Bm, int ldb,
                          real beta, real *C, int ldc)
{
    if (m == 0 || n == 0)
        return;
    GEMM(&tb, &ta, &n, &m, &k, &alpha, Bm, &ldb, A, &lda, &beta, C, &ldc);
}

/* ---- the logistic sigmoid and softplus from one exp ----------------------
 *
 * With e = exp(-|a|), which never overflows:
 *     s(a) = 1 / (1 + e)          for a >= 0,
 *     s(a) = e / (1 + e)          for a < 0,
 *     softplus(a) = log(1 + exp(a)) = max(a, 0) + log1p(e).
 * The branches are selects, so the compiler vectorizes the loops that use
 * these (EXP and LOG1P are glibc's vector versions where it has them, see
 * cA_kernel.py).
 */
static inline real FN(sigmoid_of)(real a, real e)
{
    real r = (real) 1 / ((real) 1 + e);
    return a >= 0 ? r : e * r;
}

/* ---- the step ------------------------------------------------------------
 *
 * x:     (B, V), row stride ldx (a slice of the training set, or another
 *        layer's output); read only.
 * W:     (V, H), row stride H; b: (H,); bp (b'): (V,); all updated in place.
 * lam, eta: the contraction level lambda and the learning rate.
 * L_rec: (B,) out, each example's reconstruction cross-entropy, eq. (4).
 * L_jacob: out, ||J(x)||_F^2 averaged over the minibatch, eq. (5).
 * work:  FN(workspace_size)(B, V, H) reals.
 * norms: compute the column norms c and L_jacob even when lam = 0 (the
 *        log shows the Jacobian's norm; a plain auto-encoder whose
 *        L_jacob nobody reads skips them: L_jacob is then NaN).
 * R:     rows of W per block (1 <= R <= V). Each pass walks W in blocks of
 *        R rows: at small B a block stays in the core's cache between the
 *        products and loops that use it, so W comes from memory once per
 *        pass; at large B, R = V makes each pass one big GEMM.
 */
static size_t FN(workspace_size)(int B, int V, int H)
{
    return 2 * (size_t) B * H + (size_t) B * V + 2 * (size_t) H + V;
}

static void FN(cae_sgd_step)(int B, int V, int H, const real *x, int ldx,
                             real *W, real *b, real *bp, real lam, real eta,
                             real *L_rec, real *L_jacob, real *work,
                             int norms, int R)
{
    real *h = work;                     /* (B, H): x W + b, then h      (1) */
    real *g = h + (size_t) B * H;       /* (B, H): d_z W, then d_h      (8) */
    real *d = g + (size_t) B * H;       /* (B, V): h W^T, then d_z      (7) */
    real *c = d + (size_t) B * V;       /* (H,): c_j = sum_i W_ij^2     (5) */
    real *f = c + H;                    /* (H,): 1 - 2 eta lam m_j      (9) */
    real *sv = f + H;                   /* (V,): sum_k d_z             (10) */
    const int penalty = lam != 0;       /* lam = 0: a plain auto-encoder */
    norms = norms || penalty;
    const real inv_B = (real) 1 / B;
    int i0, i, j, k;

    /* ---- pass 1 over W: x W, and the column norms c ---------------------
     * h (B, H) += x[:, I] (B, R) . W[I, :] (R, H) for each block I of R
     * rows; while the block is in cache, add its squares to c. */
    for (j = 0; j < H; j++)
        c[j] = 0;
    for (i0 = 0; i0 < V; i0 += R) {
        int r = V - i0 < R ? V - i0 : R;
        const real *Wb = W + (size_t) i0 * H;
        FN(gemm_rows)('N', 'N', B, H, r, 1, x + i0, ldx, Wb, H,
                      i0 ? 1 : 0, h, H);
        if (norms)
            for (i = 0; i < r; i++) {
                const real *w = Wb + (size_t) i * H;
                for (j = 0; j < H; j++)
                    c[j] += w[j] * w[j];
            }
    }
    /* h = s(x W + b), eq. (1); m_j = mean_k (h_kj (1 - h_kj))^2 goes in f
     * for now, eq. (9) */
    for (j = 0; j < H; j++)
        f[j] = 0;
    for (k = 0; k < B; k++) {
        real *hk = h + (size_t) k * H;
        for (j = 0; j < H; j++) {
            real a = hk[j] + b[j];
            real hkj = FN(sigmoid_of)(a, EXP(-FABS(a)));
            real s = hkj * (1 - hkj);
            hk[j] = hkj;
            f[j] += s * s;
        }
    }
    /* L_jacob = mean_k sum_j s_kj^2 c_j = sum_j m_j c_j, eq. (5); then
     * f_j = 1 - 2 eta lam m_j, the column scaling of the W update, eq. (9) */
    {
        double acc = 0;
        for (j = 0; j < H; j++) {
            real m = f[j] * inv_B;
            acc += (double) m * c[j];
            f[j] = 1 - 2 * eta * lam * m;
        }
        *L_jacob = norms ? (real) acc : (real) NAN;
    }

    /* ---- pass 2 over W: the reconstruction and d_z W --------------------
     * For each block I: a'[:, I] = h W[I, :]^T + b'[I] (B, R), eq. (3);
     * from it z, L_rec and d_z[:, I] = (z - x[:, I]) / B, eqs. (4), (7);
     * then g (B, H) += d_z[:, I] (B, R) . W[I, :] (R, H), the first term
     * of eq. (8), while the block is still in cache. */
    for (i0 = 0; i0 < V; i0 += R) {
        int r = V - i0 < R ? V - i0 : R;
        const real *Wb = W + (size_t) i0 * H;
        FN(gemm_rows)('N', 'T', B, r, H, 1, h, H, Wb, H, 0, d + i0, V);
        for (k = 0; k < B; k++) {
            const real *xk = x + (size_t) k * ldx + i0;
            real *dk = d + (size_t) k * V + i0;
            double acc = i0 ? L_rec[k] : 0;
            /* L_rec_k = sum_i softplus(a'_ki) - x_ki a'_ki equals eq. (4):
             * log z = -softplus(-a') and softplus(-a') = softplus(a') - a' */
#pragma omp simd reduction(+:acc)
            for (i = 0; i < r; i++) {
                real a = dk[i] + bp[i0 + i];
                real e = EXP(-FABS(a));
                real z = FN(sigmoid_of)(a, e);
                acc += (a > 0 ? a : 0) + LOG1P(e) - xk[i] * a;
                dk[i] = (z - xk[i]) * inv_B;
            }
            L_rec[k] = (real) acc;
        }
        FN(gemm_rows)('N', 'N', B, H, r, 1, d + i0, V, Wb, H,
                      i0 ? 1 : 0, g, H);
    }
    /* d_h = (d_z W + (2 lam / B) c s (1 - 2h)) s, s = h (1 - h), eq. (8) */
    for (k = 0; k < B; k++) {
        real *gk = g + (size_t) k * H;
        const real *hk = h + (size_t) k * H;
        const real p = 2 * lam * inv_B;
        for (j = 0; j < H; j++) {
            real s = hk[j] * (1 - hk[j]);
            gk[j] = (gk[j] + p * c[j] * s * (1 - 2 * hk[j])) * s;
        }
    }

    /* ---- pass 3 over W: the update, eq. (9) -----------------------------
     * W <- W diag(f) - eta (x^T d_h + d_z^T h), block by block: the column
     * scaling and both outer products while the block is in cache. */
    for (i0 = 0; i0 < V; i0 += R) {
        int r = V - i0 < R ? V - i0 : R;
        real *Wb = W + (size_t) i0 * H;
        if (penalty)
            for (i = 0; i < r; i++) {
                real *w = Wb + (size_t) i * H;
                for (j = 0; j < H; j++)
                    w[j] *= f[j];
            }
        FN(gemm_rows)('T', 'N', r, H, B, -eta, x + i0, ldx, g, H, 1, Wb, H);
        FN(gemm_rows)('T', 'N', r, H, B, -eta, d + i0, V, h, H, 1, Wb, H);
    }

    /* ---- the biases, eq. (10): b -= eta sum_k d_h, b' -= eta sum_k d_z --
     * (the sums first, as the reference computes them; c and f are free
     * now, c takes sum_k d_h) */
    for (j = 0; j < H; j++)
        c[j] = 0;
    for (i = 0; i < V; i++)
        sv[i] = 0;
    for (k = 0; k < B; k++) {
        const real *gk = g + (size_t) k * H;
        const real *dk = d + (size_t) k * V;
        for (j = 0; j < H; j++)
            c[j] += gk[j];
        for (i = 0; i < V; i++)
            sv[i] += dk[i];
    }
    for (j = 0; j < H; j++)
        b[j] -= eta * c[j];
    for (i = 0; i < V; i++)
        bp[i] -= eta * sv[i];
}
