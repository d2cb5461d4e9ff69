/* The C++ body of CAEStep (op.py): one SGD step of the contractive
 * auto-encoder, in place, in three passes over W, on all cores. The stack
 * compiles it as C++ (g++), which is why the file is .cpp; it uses no C++
 * beyond what C has, but for the `extern "C"` declarations op.py adds.
 *
 * op.py has the derivation; the equation numbers (1)-(10) are those of
 * cA.cA's docstring and cA.cA.get_fused_cost_updates' docstring. The same
 * step exists in four other forms that change with this one (the map in
 * __init__.py); tests/test_cA_kernel.py holds both code paths below to the
 * others. Sizes:
 * B examples in the minibatch, V visible units (rows of W), H hidden units
 * (columns of W). All arrays are C-ordered (row-major).
 *
 * This file is the Op's support code. The Python side pastes it twice,
 * once with `real` = double and GEMM = dgemm_ and once with `real` = float
 * and GEMM = sgemm_; FN(name) gives each copy's functions their own names
 * (name_float64, name_float32). The BLAS is the stack's own, through the
 * Fortran interface that blas_header_text() declares.
 *
 * Threads (OpenMP; one thread where the compiler has none): at small
 * minibatches W is cut by rows into CHUNKS fixed chunks, which the threads
 * share, each walking its chunks' blocks with the register-tiled loops
 * below (no BLAS: its products of a few rows spend their time packing);
 * the chunks' partial sums of x W, c and d_z W are added up between the passes, in
 * chunk order, so that the result is the same for any number of threads.
 * At large minibatches each pass is one GEMM that the BLAS spreads over the
 * cores itself, and the threads share the loops between the GEMMs.
 */

#ifndef CAE_INLINE  /* once, not per type */
/* the vector registers' width: 512 bits where the compiler may use
 * AVX-512, else 256 (two 128-bit halves where there is no AVX) */
#ifndef CAE_VECTOR_BYTES
#ifdef __AVX512F__
#define CAE_VECTOR_BYTES 64
#else
#define CAE_VECTOR_BYTES 32
#endif
#endif
#define CAE_TILE_B 5    /* rows of x, h or d_z in a register tile */
#define CAE_TILE_R 4    /* rows of W in the update's register tile */
#define CAE_INLINE static inline __attribute__((always_inline))
#endif

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
 * op.py).
 */
static inline real FN(sigmoid_of)(real a, real e)
{
    real r = (real) 1 / ((real) 1 + e);
    return a >= 0 ? r : e * r;
}

/* ---- the loops between the GEMMs, each on a range of rows or columns ----
 * (a thread's share; the whole range on one thread) */

/* c[j] += sum_i W_ij^2 over rows i0..i1 and columns j0..j1, eq. (5); four
 * rows at a time, so that c is loaded and stored once per four rows */
static void FN(add_squares)(const real *W, int H, int i0, int i1, int j0,
                            int j1, real *c)
{
    int i, j;
    for (i = i0; i + 4 <= i1; i += 4) {
        const real *w0 = W + (size_t) i * H, *w1 = w0 + H, *w2 = w1 + H,
                   *w3 = w2 + H;
        for (j = j0; j < j1; j++)
            c[j] += (w0[j] * w0[j] + w1[j] * w1[j]) +
                    (w2[j] * w2[j] + w3[j] * w3[j]);
    }
    for (; i < i1; i++) {
        const real *w = W + (size_t) i * H;
        for (j = j0; j < j1; j++)
            c[j] += w[j] * w[j];
    }
}

/* Columns j0..j1 of the hidden layer: h = s(x W + b), eq. (1), in place of
 * x W; m[j] = mean_k (h_kj (1 - h_kj))^2, eq. (9). */
static void FN(hidden)(int B, int H, real *h, const real *b, real *m,
                       int j0, int j1)
{
    const real inv_B = (real) 1 / B;
    int j, k;
    for (j = j0; j < j1; j++)
        m[j] = 0;
    for (k = 0; k < B; k++) {
        real *hk = h + (size_t) k * H;
        for (j = j0; j < j1; j++) {
            real a = hk[j] + b[j];
            real hkj = FN(sigmoid_of)(a, EXP(-FABS(a)));
            real s = hkj * (1 - hkj);
            hk[j] = hkj;
            m[j] += s * s;
        }
    }
    for (j = j0; j < j1; j++)
        m[j] *= inv_B;
}

/* Columns i0..i1 of the reconstruction, eqs. (3), (4), (7): d holds
 * a' - b' = h W^T there; L_rec[k] += sum_i softplus(a'_ki) - x_ki a'_ki
 * (equal to eq. (4): log z = -softplus(-a') and softplus(-a') =
 * softplus(a') - a'), and d becomes d_z = (z - x) / B. */
static void FN(visible)(int B, int V, const real *x, int ldx, real *d,
                        const real *bp, int i0, int i1, double *L_rec)
{
    const real inv_B = (real) 1 / B;
    int i, k;
    for (k = 0; k < B; k++) {
        const real *xk = x + (size_t) k * ldx;
        real *dk = d + (size_t) k * V;
        double acc = 0;
#pragma omp simd reduction(+:acc)
        for (i = i0; i < i1; i++) {
            real a = dk[i] + bp[i];
            real e = EXP(-FABS(a));
            real z = FN(sigmoid_of)(a, e);
            acc += (a > 0 ? a : 0) + LOG1P(e) - xk[i] * a;
            dk[i] = (z - xk[i]) * inv_B;
        }
        L_rec[k] += acc;
    }
}

/* Columns j0..j1: g = d_z W becomes d_h = (g + p c s (1 - 2h)) s, with
 * s = h (1 - h) and p = 2 lambda / B, eq. (8); then b -= eta sum_k d_h,
 * eq. (10). (p = 0 for a plain auto-encoder: c is not read.) */
static void FN(delta_hidden)(int B, int H, real *g, const real *h,
                             const real *c, real p, real eta, real *b,
                             real *sum, int j0, int j1)
{
    int j, k;
    for (j = j0; j < j1; j++)
        sum[j] = 0;
    for (k = 0; k < B; k++) {
        real *gk = g + (size_t) k * H;
        const real *hk = h + (size_t) k * H;
        for (j = j0; j < j1; j++) {
            real s = hk[j] * (1 - hk[j]);
            real pen = p != 0 ? p * c[j] * s * (1 - 2 * hk[j]) : 0;
            gk[j] = (gk[j] + pen) * s;
            sum[j] += gk[j];
        }
    }
    for (j = j0; j < j1; j++)
        b[j] -= eta * sum[j];
}

/* Rows i0..i1 of W: W_ij *= f_j = 1 - 2 eta lambda m_j, the penalty's part
 * of eq. (9) (q = 2 eta lambda) */
static void FN(scale_rows)(int H, real *W, const real *m, real q, int i0,
                           int i1)
{
    int i, j;
    for (i = i0; i < i1; i++) {
        real *w = W + (size_t) i * H;
        for (j = 0; j < H; j++)
            w[j] *= 1 - q * m[j];
    }
}

/* Columns i0..i1 of the visible layer: b'_i -= eta sum_k d_z,ki, eq. (10) */
static void FN(visible_bias)(int B, int V, const real *d, real eta,
                             real *bp, real *sum, int i0, int i1)
{
    int i, k;
    for (i = i0; i < i1; i++)
        sum[i] = 0;
    for (k = 0; k < B; k++) {
        const real *dk = d + (size_t) k * V;
        for (i = i0; i < i1; i++)
            sum[i] += dk[i];
    }
    for (i = i0; i < i1; i++)
        bp[i] -= eta * sum[i];
}

/* ---- small minibatches: the products in registers -----------------------
 *
 * Under op.SMALL_BATCH examples, the three products of a pass are skinny
 * (B rows against a block of W) and a library GEMM spends much of its time
 * on packing and dispatch; these loops do the products directly, with the
 * sums for a few rows of the result in vector registers while a block of W
 * streams past. Each output element is summed in one fixed order (over the
 * block's rows, or over the columns in vector lanes and then lane by lane),
 * whatever the thread. The shapes of the register tiles:
 *   X Wb (pass 1, and d_z W in pass 2): up to 5 rows of the result x 2
 *     vectors of columns, one row of Wb at a time;
 *   h Wb^T (a' in pass 2): up to 5 examples x 2 rows of Wb, one vector of
 *     columns at a time, summed across the lanes at the end;
 *   the update of Wb (pass 3): up to 4 rows of Wb x 2 vectors of columns,
 *     one example at a time.
 * CAE_TILE_B and CAE_TILE_R give the tiles' sizes; with 2 vectors wide,
 * every tile fits in AVX2's 16 vector registers. */
typedef real FN(vec) __attribute__((vector_size(CAE_VECTOR_BYTES),
                                    aligned(sizeof(real)), may_alias));
#define VL ((int) (CAE_VECTOR_BYTES / sizeof(real)))
#define VLOAD(p) (*(const FN(vec) *) (p))
#define VSTORE(p, v) (*(FN(vec) *) (p) = (v))

/* out[k, j..j + nv VL) (row stride H) = (accumulate ? out : 0)
 * + sum_i X[k, i] Wb[i, j..], for the kb rows k of X (row stride ldX) and
 * the r rows of Wb; sq[j..] += sum_i Wb[i, j..]^2 if sq (eq. (5)) */
CAE_INLINE void FN(tile_xw)(const int kb, const int nv, const real *X,
                            int ldX, const real *Wb, int r, int H, int j,
                            real *out, int accumulate, real *sq)
{
    const FN(vec) zero = {0};
    FN(vec) a[CAE_TILE_B][2], s[2] = {zero, zero};
    for (int k = 0; k < kb; k++)
        for (int v = 0; v < nv; v++)
            a[k][v] = accumulate ? VLOAD(out + (size_t) k * H + j + v * VL)
                                 : zero;
    if (sq)
        for (int v = 0; v < nv; v++)
            s[v] = VLOAD(sq + j + v * VL);
    for (int i = 0; i < r; i++) {
        const real *w = Wb + (size_t) i * H + j;
        FN(vec) w0 = VLOAD(w), w1 = nv > 1 ? VLOAD(w + VL) : zero;
        if (sq) {
            s[0] += w0 * w0;
            if (nv > 1)
                s[1] += w1 * w1;
        }
        for (int k = 0; k < kb; k++) {
            FN(vec) xk = zero + X[(size_t) k * ldX + i];
            a[k][0] += xk * w0;
            if (nv > 1)
                a[k][1] += xk * w1;
        }
    }
    for (int k = 0; k < kb; k++)
        for (int v = 0; v < nv; v++)
            VSTORE(out + (size_t) k * H + j + v * VL, a[k][v]);
    if (sq)
        for (int v = 0; v < nv; v++)
            VSTORE(sq + j + v * VL, s[v]);
}

CAE_INLINE void FN(tiles_xw)(const int nv, int B, const real *X, int ldX,
                             const real *Wb, int r, int H, int j, real *out,
                             int accumulate, real *sq)
{
    for (int k = 0; k < B; k += CAE_TILE_B) {
        const real *Xk = X + (size_t) k * ldX;
        real *ok = out + (size_t) k * H, *sk = k ? NULL : sq;
        switch (B - k < CAE_TILE_B ? B - k : CAE_TILE_B) {
        case 1: FN(tile_xw)(1, nv, Xk, ldX, Wb, r, H, j, ok, accumulate, sk);
                break;
        case 2: FN(tile_xw)(2, nv, Xk, ldX, Wb, r, H, j, ok, accumulate, sk);
                break;
        case 3: FN(tile_xw)(3, nv, Xk, ldX, Wb, r, H, j, ok, accumulate, sk);
                break;
        case 4: FN(tile_xw)(4, nv, Xk, ldX, Wb, r, H, j, ok, accumulate, sk);
                break;
        default: FN(tile_xw)(CAE_TILE_B, nv, Xk, ldX, Wb, r, H, j, ok,
                             accumulate, sk);
        }
    }
}

/* out (B x H) = (accumulate ? out : 0) + X Wb, X (B x r, row stride ldX),
 * Wb (r x H, row stride H); sq[j] += sum_i Wb_ij^2 if sq */
static void FN(xw_rows)(int B, const real *X, int ldX, const real *Wb, int r,
                        int H, real *out, int accumulate, real *sq)
{
    int j = 0;
    for (; j + 2 * VL <= H; j += 2 * VL)
        FN(tiles_xw)(2, B, X, ldX, Wb, r, H, j, out, accumulate, sq);
    for (; j + VL <= H; j += VL)
        FN(tiles_xw)(1, B, X, ldX, Wb, r, H, j, out, accumulate, sq);
    for (; j < H; j++)  /* the last columns, fewer than a vector */
        for (int k = 0; k < B; k++) {
            real acc = accumulate ? out[(size_t) k * H + j] : 0;
            for (int i = 0; i < r; i++)
                acc += X[(size_t) k * ldX + i] * Wb[(size_t) i * H + j];
            out[(size_t) k * H + j] = acc;
        }
    if (sq)
        for (j = H - H % VL; j < H; j++)
            for (int i = 0; i < r; i++)
                sq[j] += Wb[(size_t) i * H + j] * Wb[(size_t) i * H + j];
}

/* out[k, i] (row stride ldo) = sum_j h[k, j] Wb[i, j] for the kb rows of h
 * (row stride H) and the nr rows of Wb: the lanes' sums, then the lanes
 * added in order, then the last columns */
CAE_INLINE void FN(tile_dots)(const int kb, const int nr, const real *h,
                              const real *Wb, int H, real *out, int ldo)
{
    const FN(vec) zero = {0};
    FN(vec) a[2][CAE_TILE_B];
    int j;
    for (int q = 0; q < nr; q++)
        for (int k = 0; k < kb; k++)
            a[q][k] = zero;
    for (j = 0; j + VL <= H; j += VL) {
        FN(vec) w0 = VLOAD(Wb + j), w1 = nr > 1 ? VLOAD(Wb + H + j) : zero;
        for (int k = 0; k < kb; k++) {
            FN(vec) hk = VLOAD(h + (size_t) k * H + j);
            a[0][k] += hk * w0;
            if (nr > 1)
                a[1][k] += hk * w1;
        }
    }
    for (int q = 0; q < nr; q++)
        for (int k = 0; k < kb; k++) {
            real s = 0;
            for (int l = 0; l < VL; l++)
                s += a[q][k][l];
            for (int jj = j; jj < H; jj++)
                s += h[(size_t) k * H + jj] * Wb[(size_t) q * H + jj];
            out[(size_t) k * ldo + q] = s;
        }
}

/* out (B x r, row stride ldo) = h Wb^T, h (B x H), Wb (r x H) */
static void FN(dots_rows)(int B, const real *h, const real *Wb, int r, int H,
                          real *out, int ldo)
{
    for (int i = 0; i < r; i += 2)
        for (int k = 0; k < B; k += CAE_TILE_B) {
            const real *hk = h + (size_t) k * H, *Wi = Wb + (size_t) i * H;
            real *o = out + (size_t) k * ldo + i;
            int kb = B - k < CAE_TILE_B ? B - k : CAE_TILE_B;
            if (r - i == 1)
                switch (kb) {
                case 1: FN(tile_dots)(1, 1, hk, Wi, H, o, ldo); break;
                case 2: FN(tile_dots)(2, 1, hk, Wi, H, o, ldo); break;
                case 3: FN(tile_dots)(3, 1, hk, Wi, H, o, ldo); break;
                case 4: FN(tile_dots)(4, 1, hk, Wi, H, o, ldo); break;
                default: FN(tile_dots)(CAE_TILE_B, 1, hk, Wi, H, o, ldo);
                }
            else
                switch (kb) {
                case 1: FN(tile_dots)(1, 2, hk, Wi, H, o, ldo); break;
                case 2: FN(tile_dots)(2, 2, hk, Wi, H, o, ldo); break;
                case 3: FN(tile_dots)(3, 2, hk, Wi, H, o, ldo); break;
                case 4: FN(tile_dots)(4, 2, hk, Wi, H, o, ldo); break;
                default: FN(tile_dots)(CAE_TILE_B, 2, hk, Wi, H, o, ldo);
                }
        }
}

/* The update of eq. (9) for nr rows of Wb and columns j..j + nv VL:
 * Wb_ij <- Wb_ij f_j - eta sum_k (x_ki dh_kj + dz_ki h_kj), with
 * f_j = 1 - q m_j (f = 1 without m: no penalty); x, dz: the block's
 * columns (row strides ldx, ldd); dh, h: B x H */
CAE_INLINE void FN(tile_update)(const int nr, const int nv, int B,
                                const real *x, int ldx, const real *dz,
                                int ldd, const real *dh, const real *h,
                                real *Wb, int H, int j, const real *m,
                                real q, real eta)
{
    const FN(vec) zero = {0};
    FN(vec) a[CAE_TILE_R][2];
    for (int i = 0; i < nr; i++)
        for (int v = 0; v < nv; v++)
            a[i][v] = zero;
    for (int k = 0; k < B; k++) {
        const real *g = dh + (size_t) k * H + j;
        FN(vec) g0 = VLOAD(g), g1 = nv > 1 ? VLOAD(g + VL) : zero;
        for (int i = 0; i < nr; i++) {
            FN(vec) xi = zero + x[(size_t) k * ldx + i];
            a[i][0] += xi * g0;
            if (nv > 1)
                a[i][1] += xi * g1;
        }
    }
    for (int k = 0; k < B; k++) {
        const real *g = h + (size_t) k * H + j;
        FN(vec) g0 = VLOAD(g), g1 = nv > 1 ? VLOAD(g + VL) : zero;
        for (int i = 0; i < nr; i++) {
            FN(vec) di = zero + dz[(size_t) k * ldd + i];
            a[i][0] += di * g0;
            if (nv > 1)
                a[i][1] += di * g1;
        }
    }
    for (int v = 0; v < nv; v++) {
        FN(vec) f = m ? 1 - q * VLOAD(m + j + v * VL) : zero + 1;
        for (int i = 0; i < nr; i++) {
            real *w = Wb + (size_t) i * H + j + v * VL;
            VSTORE(w, VLOAD(w) * f - eta * a[i][v]);
        }
    }
}

CAE_INLINE void FN(tiles_update)(const int nv, int B, const real *x,
                                 int ldx, const real *dz, int ldd,
                                 const real *dh, const real *h, real *Wb,
                                 int r, int H, int j, const real *m, real q,
                                 real eta)
{
    for (int i = 0; i < r; i += CAE_TILE_R) {
        real *Wi = Wb + (size_t) i * H;
        switch (r - i < CAE_TILE_R ? r - i : CAE_TILE_R) {
        case 1: FN(tile_update)(1, nv, B, x + i, ldx, dz + i, ldd, dh, h, Wi,
                                H, j, m, q, eta); break;
        case 2: FN(tile_update)(2, nv, B, x + i, ldx, dz + i, ldd, dh, h, Wi,
                                H, j, m, q, eta); break;
        case 3: FN(tile_update)(3, nv, B, x + i, ldx, dz + i, ldd, dh, h, Wi,
                                H, j, m, q, eta); break;
        default: FN(tile_update)(CAE_TILE_R, nv, B, x + i, ldx, dz + i, ldd,
                                 dh, h, Wi, H, j, m, q, eta);
        }
    }
}

/* Eq. (9) on the r rows of the block Wb: Wb <- Wb diag(f)
 * - eta (x^T dh + dz^T h), x and dz the block's columns */
static void FN(update_rows)(int B, const real *x, int ldx, const real *dz,
                            int ldd, const real *dh, const real *h,
                            real *Wb, int r, int H, const real *m, real q,
                            real eta)
{
    int j = 0;
    for (; j + 2 * VL <= H; j += 2 * VL)
        FN(tiles_update)(2, B, x, ldx, dz, ldd, dh, h, Wb, r, H, j, m, q,
                         eta);
    for (; j + VL <= H; j += VL)
        FN(tiles_update)(1, B, x, ldx, dz, ldd, dh, h, Wb, r, H, j, m, q,
                         eta);
    for (; j < H; j++) {  /* the last columns, fewer than a vector */
        real f = m ? 1 - q * m[j] : 1;
        for (int i = 0; i < r; i++) {
            real acc = 0;
            for (int k = 0; k < B; k++)
                acc += x[(size_t) k * ldx + i] * dh[(size_t) k * H + j];
            for (int k = 0; k < B; k++)
                acc += dz[(size_t) k * ldd + i] * h[(size_t) k * H + j];
            Wb[(size_t) i * H + j] = Wb[(size_t) i * H + j] * f - eta * acc;
        }
    }
}
#undef VL
#undef VLOAD
#undef VSTORE

#ifndef CAE_COMMON  /* once, not per type */
#define CAE_COMMON
/* thread t of nt: its share [*lo, *hi) of n items, in units of `unit` */
static void cae_share(int n, int unit, int t, int nt, int *lo, int *hi)
{
    long units = (n + unit - 1) / unit;
    long a = units * t / nt * unit, z = units * (t + 1) / nt * unit;
    *lo = (int) (a < n ? a : n);
    *hi = (int) (z < n ? z : n);
}

/* Column ranges are shared in units of COLS, a multiple of a cache line, so
 * that no two threads write to one line. */
#define COLS 16

/* At small minibatches the rows of W are cut into CHUNKS fixed chunks, each
 * with its own partial sums, added up in chunk order whatever the number of
 * threads that computed them: the step's result does not depend on how
 * many threads ran it (so op.py may pick the number per step). */
#define CHUNKS 8

#ifdef _OPENMP
#define THREAD omp_get_thread_num()
#define THREADS omp_get_num_threads()
#else
#define THREAD 0
#define THREADS 1
#endif
#endif  /* CAE_COMMON */

/* ---- the step ------------------------------------------------------------
 *
 * x:     (B, V), row stride ldx (a slice of the training set, or another
 *        layer's output); read only.
 * W:     (V, H), row stride H; b: (H,); bp (b'): (V,); all updated in place.
 * lam, eta: the contraction level lambda and the learning rate.
 * L_rec: (B,) out, each example's reconstruction cross-entropy, eq. (4).
 * L_jacob: out, ||J(x)||_F^2 averaged over the minibatch, eq. (5).
 * work:  FN(workspace_size)(B, V, H) bytes.
 * norms: compute the column norms c and L_jacob even when lam = 0 (the
 *        log shows the Jacobian's norm; a plain auto-encoder whose L_jacob
 *        nobody reads skips them: L_jacob is then NaN).
 * R:     rows of W per block, 1 <= R <= V. Each pass walks W in blocks of
 *        R rows: at small B a block stays in the core's cache between the
 *        products and loops that use it, so W comes from memory once per
 *        pass. R = V means one block: each pass is one large GEMM.
 * nthreads: threads to use (1 without OpenMP).
 */

/* The workspace, carved into arrays that each start on a cache line. */
struct FN(cae_work) {
    real *h;        /* (B, H): x W, then h                             (1) */
    real *g;        /* (B, H): d_z W, then d_h, right after h          (8) */
    real *d;        /* (B, V): h W^T, then d_z                         (7) */
    real *x;        /* (B, V): a copy of x right after d, at large B   (9) */
    real *c;        /* (H,): c_j = sum_i W_ij^2                        (5) */
    real *m;        /* (H,): m_j = mean_k s_kj^2                       (9) */
    real *sum;      /* (max(H, V),): the bias gradients               (10) */
    double *L_rec;  /* (CHUNKS, B): each chunk's share of L_rec        (4) */
    real *part;     /* (CHUNKS - 1, 2 B H + H): the partial x W, d_z W and c
                       of chunks 1.. (chunk 0's are h, g and c) */
};

static size_t FN(cae_carve)(struct FN(cae_work) *w, char *base, int B,
                            int V, int H)
{
    size_t at = 0;
#define CAE_TAKE(field, type, count)                                     \
    w->field = (type *) (base ? base + at : NULL);                       \
    at += ((size_t) (count) * sizeof(type) + 63) / 64 * 64;
    /* [h; g] and [d; x] are each one (2B, H) and (2B, V) array: the
     * update of eq. (9) at large minibatches is one GEMM of them */
    CAE_TAKE(h, real, 2 * (size_t) B * H)
    w->g = w->h ? w->h + (size_t) B * H : NULL;
    CAE_TAKE(d, real, 2 * (size_t) B * V)
    w->x = w->d ? w->d + (size_t) B * V : NULL;
    CAE_TAKE(c, real, H)
    CAE_TAKE(m, real, H)
    CAE_TAKE(sum, real, H > V ? H : V)
    CAE_TAKE(L_rec, double, (size_t) CHUNKS * B)
    CAE_TAKE(part, real, (size_t) (CHUNKS - 1) * (2 * (size_t) B * H + H))
#undef CAE_TAKE
    return at;
}

/* Chunk c's partial sums (c >= 1; chunk 0 sums into h, g and c
 * themselves): x W, then d_z W, then c, one after the other */
static real *FN(partials)(const struct FN(cae_work) *w, int c, int B, int H)
{
    return w->part + (size_t) (c - 1) * (2 * (size_t) B * H + H);
}

static size_t FN(workspace_size)(int B, int V, int H)
{
    struct FN(cae_work) w;
    return FN(cae_carve)(&w, NULL, B, V, H) + 64;
}

static void FN(cae_sgd_step)(int B, int V, int H, const real *x, int ldx,
                             real *W, real *b, real *bp, real lam, real eta,
                             real *L_rec, real *L_jacob, void *work,
                             int norms, int R, int nthreads)
{
    struct FN(cae_work) w;
    const int penalty = lam != 0;       /* lam = 0: a plain auto-encoder */
    const real p = 2 * lam / B;         /* the penalty's factor in (8) */
    const real q = 2 * eta * lam;       /* and in (9) */
    int k;
    /* the workspace from its first cache line on */
    FN(cae_carve)(&w, (char *) (((size_t) work + 63) / 64 * 64), B, V, H);
    norms = norms || penalty;
    if (R >= V)
        R = V;
    for (k = 0; k < CHUNKS * B; k++)
        w.L_rec[k] = 0;

    if (R < V) {
        /* ---- small minibatches: W by blocks of rows, in CHUNKS fixed
         * chunks, chunk c on thread c % nt; one parallel region, with
         * barriers between passes; the chunks' partial sums are added up
         * column by column, in chunk order */
        if (nthreads > CHUNKS)
            nthreads = CHUNKS;
#pragma omp parallel num_threads(nthreads)
        {
            const int t = THREAD, nt = THREADS;
            int c, v0, v1, j0, j1, i0, r;
            cae_share(H, COLS, t, nt, &j0, &j1);

            /* pass 1: h_c = x[:, rows] W[rows, :] and c_c = their squares,
             * for each chunk's rows */
            for (c = t; c < CHUNKS; c += nt) {
                real *hc = c ? FN(partials)(&w, c, B, H) : w.h;
                real *cc = c ? hc + 2 * (size_t) B * H : w.c;
                cae_share(V, R, c, CHUNKS, &v0, &v1);
                for (int j = 0; j < H; j++)
                    cc[j] = 0;
                if (v0 == v1)
                    for (size_t e = 0; e < (size_t) B * H; e++)
                        hc[e] = 0;
                for (i0 = v0; i0 < v1; i0 += R) {
                    const real *Wb = W + (size_t) i0 * H;
                    r = v1 - i0 < R ? v1 - i0 : R;
                    FN(xw_rows)(B, x + i0, ldx, Wb, r, H, hc, i0 > v0,
                                norms ? cc : NULL);
                }
            }
#pragma omp barrier
            /* the chunks' partial sums, this thread's columns; then h, m */
            for (c = 1; c < CHUNKS; c++) {
                const real *hs = FN(partials)(&w, c, B, H);
                const real *cs = hs + 2 * (size_t) B * H;
                for (k = 0; k < B; k++)
                    for (int j = j0; j < j1; j++)
                        w.h[(size_t) k * H + j] += hs[(size_t) k * H + j];
                for (int j = j0; j < j1; j++)
                    w.c[j] += cs[j];
            }
            FN(hidden)(B, H, w.h, b, w.m, j0, j1);
#pragma omp barrier
            /* pass 2: for each block, a' = h W^T there, then d_z, then
             * g_c += d_z[:, block] W[block, :] while the block is in cache */
            for (c = t; c < CHUNKS; c += nt) {
                real *gc = c ? FN(partials)(&w, c, B, H) + (size_t) B * H
                             : w.g;
                cae_share(V, R, c, CHUNKS, &v0, &v1);
                if (v0 == v1)
                    for (size_t e = 0; e < (size_t) B * H; e++)
                        gc[e] = 0;
                for (i0 = v0; i0 < v1; i0 += R) {
                    const real *Wb = W + (size_t) i0 * H;
                    r = v1 - i0 < R ? v1 - i0 : R;
                    FN(dots_rows)(B, w.h, Wb, r, H, w.d + i0, V);
                    FN(visible)(B, V, x, ldx, w.d, bp, i0, i0 + r,
                                w.L_rec + (size_t) c * B);
                    FN(xw_rows)(B, w.d + i0, V, Wb, r, H, gc, i0 > v0,
                                NULL);
                }
            }
#pragma omp barrier
            /* d_z W summed over the chunks, then d_h and b, eq. (8) */
            for (c = 1; c < CHUNKS; c++) {
                const real *gs = FN(partials)(&w, c, B, H) + (size_t) B * H;
                for (k = 0; k < B; k++)
                    for (int j = j0; j < j1; j++)
                        w.g[(size_t) k * H + j] += gs[(size_t) k * H + j];
            }
            FN(delta_hidden)(B, H, w.g, w.h, w.c, p, eta, b, w.sum, j0, j1);
#pragma omp barrier
            /* pass 3: each chunk's rows of W, eq. (9), and of b' */
            for (c = t; c < CHUNKS; c += nt) {
                cae_share(V, R, c, CHUNKS, &v0, &v1);
                for (i0 = v0; i0 < v1; i0 += R) {
                    real *Wb = W + (size_t) i0 * H;
                    r = v1 - i0 < R ? v1 - i0 : R;
                    FN(visible_bias)(B, V, w.d, eta, bp, w.sum, i0, i0 + r);
                    FN(update_rows)(B, x + i0, ldx, w.d + i0, V, w.g, w.h,
                                    Wb, r, H, penalty ? w.m : NULL, q, eta);
                }
            }
        }
    } else {
        /* ---- large minibatches: each pass one GEMM over all of W, which
         * the BLAS spreads over the cores; the loops in between are shared
         * by the threads (columns, or rows, of their arrays) */
        FN(gemm_rows)('N', 'N', B, H, V, 1, x, ldx, W, H, 0, w.h, H);
#pragma omp parallel num_threads(nthreads)
        {
            int j0, j1;
            cae_share(H, COLS, THREAD, THREADS, &j0, &j1);
            for (int j = j0; j < j1; j++)
                w.c[j] = 0;
            if (norms)
                FN(add_squares)(W, H, 0, V, j0, j1, w.c);
            FN(hidden)(B, H, w.h, b, w.m, j0, j1);
        }
        FN(gemm_rows)('N', 'T', B, V, H, 1, w.h, H, W, H, 0, w.d, V);
#pragma omp parallel num_threads(nthreads)
        {
            /* by chunks of columns, each with its share of L_rec */
            for (int c = THREAD; c < CHUNKS; c += THREADS) {
                int i0, i1;
                cae_share(V, COLS, c, CHUNKS, &i0, &i1);
                FN(visible)(B, V, x, ldx, w.d, bp, i0, i1,
                            w.L_rec + (size_t) c * B);
            }
        }
        FN(gemm_rows)('N', 'N', B, H, V, 1, w.d, V, W, H, 0, w.g, H);
#pragma omp parallel num_threads(nthreads)
        {
            int j0, j1, i0, i1;
            cae_share(H, COLS, THREAD, THREADS, &j0, &j1);
            FN(delta_hidden)(B, H, w.g, w.h, w.c, p, eta, b, w.sum, j0, j1);
#pragma omp barrier
            cae_share(V, COLS, THREAD, THREADS, &i0, &i1);
            if (penalty)
                FN(scale_rows)(H, W, w.m, q, i0, i1);
            FN(visible_bias)(B, V, w.d, eta, bp, w.sum, i0, i1);
            for (int e = 0; e < B; e++)
                memcpy(w.x + (size_t) e * V + i0, x + (size_t) e * ldx + i0,
                       (size_t) (i1 - i0) * sizeof(real));
        }
        /* eq. (9) as one product: [d_z; x]^T [h; d_h] = d_z^T h + x^T d_h */
        FN(gemm_rows)('T', 'N', V, H, 2 * B, -eta, w.d, V, w.h, H, 1, W, H);
    }

    /* the shares of L_rec, in a fixed order; L_jacob = sum_j m_j c_j,
     * eq. (5), in column order */
    for (k = 0; k < B; k++) {
        double acc = 0;
        for (int s = 0; s < CHUNKS; s++)
            acc += w.L_rec[(size_t) s * B + k];
        L_rec[k] = (real) acc;
    }
    if (norms) {
        double L_jacob_sum = 0;
        for (int j = 0; j < H; j++)
            L_jacob_sum += (double) w.m[j] * w.c[j];
        *L_jacob = (real) L_jacob_sum;
    } else {
        *L_jacob = (real) NAN;
    }
}
