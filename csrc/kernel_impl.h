// One instruction-set variant of the MAMT memory kernel's hot loops.
//
// This file is included several times by memory.cpp, each time inside its own namespace and with
//   MTL_FN   attributes of every function here (e.g. __attribute__((target("avx2,fma"))))
//   MTL_W    floats per vector register (1 = scalar fallback for compilers without vector extensions)
//   MTL_MR   rows of X per register block (<= 4)
//   MTL_NR   rows of Y per register block (<= 4)
// It must not include headers (memory.cpp includes them before).
//
// Determinism: every dot product, whichever register block or tail computes it, is one vector
// accumulator over D in W-float chunks (the last one zero-padded), FMA'd in the same order, then reduced
// across lanes with the same fixed tree. So dot(x, y) is the same bit pattern in the B x M product, in
// the B x B product and in a norm, and exact ties (duplicate slots) stay exact ties.

#if MTL_W > 1
typedef float vec __attribute__((vector_size(MTL_W * sizeof(float))));
#else
typedef float vec;
#endif

MTL_FN inline vec vload(const float* p) {
    vec v;
    std::memcpy(&v, p, sizeof(vec));
    return v;
}

MTL_FN inline vec vload_part(const float* p, int64_t n) {  // n < MTL_W floats, rest zero
    vec v = vec{};
    std::memcpy(&v, p, static_cast<size_t>(n) * sizeof(float));
    return v;
}

// Sum of the lanes by a fixed halving tree: t[l] += t[l + h] for h = W/2, W/4, ..., 1.
#if MTL_W > 1 && (defined(__clang__) || __GNUC__ >= 12)
typedef float vec2_t __attribute__((vector_size(2 * sizeof(float))));
typedef float vec4_t __attribute__((vector_size(4 * sizeof(float))));
#if MTL_W >= 8
typedef float vec8_t __attribute__((vector_size(8 * sizeof(float))));
#endif
MTL_FN inline float hsum(vec v) {
#if MTL_W == 16
    const vec8_t v8 = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                      __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
#elif MTL_W == 8
    const vec8_t v8 = v;
#endif
#if MTL_W >= 8
    const vec4_t v4 = __builtin_shufflevector(v8, v8, 0, 1, 2, 3) + __builtin_shufflevector(v8, v8, 4, 5, 6, 7);
#else
    const vec4_t v4 = v;
#endif
    const vec2_t v2 = __builtin_shufflevector(v4, v4, 0, 1) + __builtin_shufflevector(v4, v4, 2, 3);
    return v2[0] + v2[1];
}
#else
MTL_FN inline float hsum(vec v) {
#if MTL_W > 1
    float t[MTL_W];
    std::memcpy(t, &v, sizeof(t));
    for (int h = MTL_W / 2; h > 0; h /= 2)
        for (int l = 0; l < h; ++l) t[l] += t[l + h];
    return t[0];
#else
    return v;
#endif
}
#endif

// out[r * ldo + c] = dot(x_r, y_c) for an R x C block; x_r = x + r * ldx, y_c = y + c * ldy.
template <int R, int C>
MTL_FN void micro(const float* x, int64_t ldx, const float* y, int64_t ldy, int64_t D, float* out, int64_t ldo) {
    vec acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = vec{};
    const int64_t Dv = D - D % MTL_W;
    for (int64_t k = 0; k < Dv; k += MTL_W) {
        vec yv[C];
        for (int c = 0; c < C; ++c) yv[c] = vload(y + c * ldy + k);
        for (int r = 0; r < R; ++r) {
            const vec xv = vload(x + r * ldx + k);
            for (int c = 0; c < C; ++c) acc[r][c] += xv * yv[c];
        }
    }
    if (Dv < D) {
        const int64_t n = D - Dv;
        vec yv[C];
        for (int c = 0; c < C; ++c) yv[c] = vload_part(y + c * ldy + Dv, n);
        for (int r = 0; r < R; ++r) {
            const vec xv = vload_part(x + r * ldx + Dv, n);
            for (int c = 0; c < C; ++c) acc[r][c] += xv * yv[c];
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) out[r * ldo + c] = hsum(acc[r][c]);
}

MTL_FN void micro_any(int R, int C, const float* x, int64_t ldx, const float* y, int64_t ldy, int64_t D,
                      float* out, int64_t ldo) {
#define MTL_CASE(r, c) \
    case r * 8 + c: micro<r, c>(x, ldx, y, ldy, D, out, ldo); break;
    switch (R * 8 + C) {
        MTL_CASE(1, 1) MTL_CASE(1, 2) MTL_CASE(1, 3) MTL_CASE(1, 4)
        MTL_CASE(2, 1) MTL_CASE(2, 2) MTL_CASE(2, 3) MTL_CASE(2, 4)
        MTL_CASE(3, 1) MTL_CASE(3, 2) MTL_CASE(3, 3) MTL_CASE(3, 4)
        MTL_CASE(4, 1) MTL_CASE(4, 2) MTL_CASE(4, 3) MTL_CASE(4, 4)
        default: break;
    }
#undef MTL_CASE
}

// out[r] = |y_r| for R rows (independent accumulators, same per-pair arithmetic as micro<1, 1>(y, y)).
template <int R>
MTL_FN void selfdots(const float* y, int64_t ldy, int64_t D, float* out) {
    vec acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vec{};
    const int64_t Dv = D - D % MTL_W;
    for (int64_t k = 0; k < Dv; k += MTL_W)
        for (int r = 0; r < R; ++r) {
            const vec v = vload(y + r * ldy + k);
            acc[r] += v * v;
        }
    if (Dv < D)
        for (int r = 0; r < R; ++r) {
            const vec v = vload_part(y + r * ldy + Dv, D - Dv);
            acc[r] += v * v;
        }
    for (int r = 0; r < R; ++r) out[r] = std::sqrt(hsum(acc[r]));
}

// out[i] = |X_i| for n rows of length D (row stride D).
MTL_FN void norms(const float* X, int64_t n, int64_t D, float* out) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) selfdots<8>(X + i * D, D, D, out + i);
    for (; i < n; ++i) selfdots<1>(X + i * D, D, D, out + i);
}

// C[i * ldc + j] = F(X_i, Y_j) for i < nx, j < ny (rows of length D, row stride D).
// metric kRaw: plain dot products. Otherwise xnorm[i] = |X_i| must be given and ynorm (out, length ny)
// receives |Y_j|, computed panel by panel while the panel is in cache, so Y is streamed from memory once.
MTL_FN void gemm(const float* X, int64_t nx, const float* Y, int64_t ny, int64_t D, float* C, int64_t ldc,
                 int metric, const float* xnorm, float* ynorm) {
    if (nx <= 0 || ny <= 0) return;
    // Y panel of about 192 KiB stays in L2 while every register block of X (MR rows, in L1) passes over it.
    int64_t panel = (192 * 1024) / (D * static_cast<int64_t>(sizeof(float)));
    panel = panel / MTL_NR * MTL_NR;
    if (panel < 4 * MTL_NR) panel = 4 * MTL_NR;
    for (int64_t j0 = 0; j0 < ny; j0 += panel) {
        const int64_t j1 = j0 + panel < ny ? j0 + panel : ny;
        const float* Yp = Y + j0 * D;
        if (metric != mtl_memory::kRaw) norms(Yp, j1 - j0, D, ynorm + j0);
        for (int64_t i = 0; i < nx; i += MTL_MR) {
            const int R = static_cast<int>(nx - i < MTL_MR ? nx - i : MTL_MR);
            const float* Xi = X + i * D;
            int64_t j = j0;
            if (R == MTL_MR)
                for (; j + MTL_NR <= j1; j += MTL_NR)
                    micro<MTL_MR, MTL_NR>(Xi, D, Y + j * D, D, D, C + i * ldc + j, ldc);
            for (; j < j1; j += MTL_NR) {
                const int Cn = static_cast<int>(j1 - j < MTL_NR ? j1 - j : MTL_NR);
                micro_any(R, Cn, Xi, D, Y + j * D, D, D, C + i * ldc + j, ldc);
            }
        }
        // Epilogue on the panel while it is hot: dot products -> similarities.
        if (metric == mtl_memory::kCosine) {
            for (int64_t i = 0; i < nx; ++i) {
                const float ix = mtl_memory::inv_norm(xnorm[i]);
                float* c = C + i * ldc;
                for (int64_t jj = j0; jj < j1; ++jj)
                    c[jj] = mtl_memory::scale_cosine(c[jj], ix, mtl_memory::inv_norm(ynorm[jj]));
            }
        } else if (metric == mtl_memory::kMaxNorm) {
            for (int64_t i = 0; i < nx; ++i) {
                const float nxi = xnorm[i];
                float* c = C + i * ldc;
                for (int64_t jj = j0; jj < j1; ++jj) c[jj] = mtl_memory::scale_maxnorm(c[jj], nxi, ynorm[jj]);
            }
        }
    }
}

// norm[j] = |A_j| and sum += sum_j A_j / |A_j| (zero rows contribute 0), for M rows of length D, in
// double (memory-bound: the conversions hide under the loads). Norms are taken 64 rows at a time, so each
// row is read from DRAM once.
MTL_FN void accum_normalized(const float* A, int64_t M, int64_t D, float* norm, double* sum) {
    for (int64_t j0 = 0; j0 < M; j0 += 64) {
        const int64_t j1 = j0 + 64 < M ? j0 + 64 : M;
        norms(A + j0 * D, j1 - j0, D, norm + j0);
        for (int64_t j = j0; j < j1; ++j) {
            if (!(norm[j] > 0.0f)) continue;  // zero row (or not finite: reported by the caller)
            const double s = 1.0 / static_cast<double>(norm[j]);
            const float* a = A + j * D;
            for (int64_t k = 0; k < D; ++k) sum[k] += static_cast<double>(a[k]) * s;
        }
    }
}

// out += alpha * a (double accumulator, float row).
MTL_FN void axpy_d(double* out, const float* a, double alpha, int64_t D) {
    for (int64_t k = 0; k < D; ++k) out[k] += alpha * static_cast<double>(a[k]);
}

// sum_k a[k] * b[k] for a float row and a double vector, in double (8 interleaved partial sums, so the
// loop is not bound by the latency of one add chain; fixed order, hence deterministic).
MTL_FN double dot_fd(const float* a, const double* b, int64_t D) {
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t k = 0;
    for (; k + 8 <= D; k += 8)
        for (int l = 0; l < 8; ++l) acc[l] += static_cast<double>(a[k + l]) * b[k + l];
    for (; k < D; ++k) acc[k % 8] += static_cast<double>(a[k]) * b[k];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}
