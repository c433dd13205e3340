// mtl._memory: the C++17 kernel of MAMT's memory (Yan et al., "Memory-assistant collaborative language
// understanding", IEEE TII 2022). Dispatched from Python by mtl.memory; see DESIGN.md, "The C++ kernel".
//
//   similarity(z, mem, metric)                 -> [B, M] float32          (Eq. 2)
//   topk(z, mem, k, metric)                    -> ([B, k] float32, [B, k] int64)
//   weights(z, mem, k, phi, metric, mean)      -> [B] float32             (Eqs. 4-5)
//   replace(mem, z, u, r, psi, metric, mean)   -> [B] int64, mem in place (Eq. 3, Alg. 1 lines 4-12)
//   normalized_mean(mem)                       -> [D] float64, mean_j(A_j / |A_j|)
//
// Arrays are numpy arrays (zero-copy views of torch tensors from mtl.memory): z and mem float32, 2-D,
// C-contiguous. Bad input raises ValueError and never touches memory out of bounds. The GIL is released
// while computing.
//
// Speed comes from (DESIGN.md, "two facts"):
//  1. cosine with k = M: S_i = z_i/|z_i| . mean_j(A_j/|A_j|): O(M D) once + O(B D), instead of O(B M D);
//  2. sequential replacement computes the B x M and B x B products once (only for the instances that take
//     the argmin branch); after slot j takes z_i only column j of the later rows changes, and its new value
//     F(z_i', z_i) comes from the B x B product, so replacement costs one GEMM + O(B (M + B)).
// The products run in cache-blocked register-tiled micro-kernels (kernel_impl.h), compiled once per
// instruction set (x86-64: baseline SSE2, AVX2+FMA, AVX-512) and chosen at import by CPUID; other
// architectures (arm64) use the portable build, auto-vectorised for NEON at -O3.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "common.h"
#include "isa_table.h"

namespace py = pybind11;

namespace mtl_memory {

// ------------------------------------------------------------------------------------------------------
// Instruction-set variants.

#if defined(__GNUC__) && defined(__x86_64__)
#define MTL_X86 1
#endif

#if defined(__GNUC__) || defined(__clang__)
#define MTL_VEC_W 4  // 128-bit vectors: SSE2 on x86-64, NEON on arm64
#else
#define MTL_VEC_W 1  // no GNU vector extensions (MSVC): scalar code, auto-vectorised by the compiler
#endif

namespace isa_base {
#define MTL_FN
#define MTL_W MTL_VEC_W
#if defined(MTL_X86)
#define MTL_MR 2  // 16 xmm registers and no FMA: 2 x 4 accumulators
#define MTL_NR 4
#else
#define MTL_MR 4  // arm64: 32 q registers, 4 x 4 accumulators
#define MTL_NR 4
#endif
#include "kernel_impl.h"
#undef MTL_FN
#undef MTL_W
#undef MTL_MR
#undef MTL_NR
}  // namespace isa_base

#if defined(MTL_X86)
namespace isa_avx2 {
#define MTL_FN __attribute__((target("avx2,fma")))
#define MTL_W 8
#define MTL_MR 4  // 4 x 3 accumulators + 3 Y rows + 1 X row = 16 ymm registers
#define MTL_NR 3
#include "kernel_impl.h"
#undef MTL_FN
#undef MTL_W
#undef MTL_MR
#undef MTL_NR
}  // namespace isa_avx2

namespace isa_avx512 {
#define MTL_FN __attribute__((target("avx512f,avx2,fma")))
#define MTL_W 16
#define MTL_MR 4  // 4 x 4 accumulators of 32 zmm registers
#define MTL_NR 4
#include "kernel_impl.h"
#undef MTL_FN
#undef MTL_W
#undef MTL_MR
#undef MTL_NR
}  // namespace isa_avx512
#endif

struct Ops {
    const char* name;
    void (*norms)(const float*, int64_t, int64_t, float*);
    void (*gemm)(const float*, int64_t, const float*, int64_t, int64_t, float*, int64_t, int, const float*, float*);
    void (*accum_normalized)(const float*, int64_t, int64_t, float*, double*);
    void (*axpy_d)(double*, const float*, double, int64_t);
    double (*dot_fd)(const float*, const double*, int64_t);
};

#define MTL_OPS(ns, label) \
    Ops { label, ns::norms, ns::gemm, ns::accum_normalized, ns::axpy_d, ns::dot_fd }

static std::vector<Ops> available_ops() {
    std::vector<Ops> ops;
#if defined(MTL_X86)
    ops.push_back(MTL_OPS(isa_base, "sse2"));
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2) ops.push_back(MTL_OPS(isa_avx2, "avx2"));
    if (avx2 && __builtin_cpu_supports("avx512f")) ops.push_back(MTL_OPS(isa_avx512, "avx512"));
#elif MTL_VEC_W > 1
#if defined(__aarch64__)
    ops.push_back(MTL_OPS(isa_base, "neon"));
#else
    ops.push_back(MTL_OPS(isa_base, "generic"));
#endif
#else
    ops.push_back(MTL_OPS(isa_base, "scalar"));
#endif
    return ops;
}

// The widest unit this CPU has, unless MTL_MEMORY_ISA (when it names an available one) or set_isa chose another.
static mtl_isa::IsaTable<Ops>& isa_table() {
    static mtl_isa::IsaTable<Ops> table(available_ops(), "memory kernel");
    return table;
}

static const Ops& ops() { return isa_table().current(); }

// ------------------------------------------------------------------------------------------------------
// Validation (under the GIL). Every check raises ValueError before any computation or write.

struct Mat {
    float* p;
    int64_t rows;
    int64_t cols;
    const char* begin;
    const char* end;
};

static std::string describe(const py::handle& o) { return py::str(py::type::of(o).attr("__name__")).cast<std::string>(); }

static Mat matrix(const py::object& o, const char* name, bool writable) {
    if (!py::isinstance<py::array>(o))
        throw py::value_error(std::string(name) + " must be a numpy array of float32, got " + describe(o));
    py::array a = py::reinterpret_borrow<py::array>(o);
    if (a.ndim() != 2)
        throw py::value_error(std::string(name) + " must be 2-D [rows, D], got " + std::to_string(a.ndim()) +
                              "-D");
    if (!py::isinstance<py::array_t<float>>(a))
        throw py::value_error(std::string(name) + " must have dtype float32, got " +
                              py::str(a.dtype()).cast<std::string>());
    const int flags = a.flags();
    if (!(flags & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
    if (!(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error(std::string(name) + " must be aligned");
    if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable (it is updated in place)");
    Mat m;
    m.p = static_cast<float*>(const_cast<void*>(a.data()));
    m.rows = static_cast<int64_t>(a.shape(0));
    m.cols = static_cast<int64_t>(a.shape(1));
    m.begin = reinterpret_cast<const char*>(m.p);
    m.end = m.begin + a.nbytes();
    return m;
}

static void check_pair(const Mat& z, const Mat& mem) {
    if (mem.rows < 1) throw py::value_error("mem is empty: the memory needs at least one slot (M >= 1)");
    if (mem.cols < 1) throw py::value_error("feature dimension D must be >= 1, got mem of shape [" +
                                            std::to_string(mem.rows) + ", 0]");
    if (z.cols != mem.cols)
        throw py::value_error("z and mem must have the same feature dimension D, got z [" + std::to_string(z.rows) +
                              ", " + std::to_string(z.cols) + "] and mem [" + std::to_string(mem.rows) + ", " +
                              std::to_string(mem.cols) + "]");
}

static int parse_metric(const std::string& metric) {
    if (metric == "cosine") return kCosine;
    if (metric == "maxnorm") return kMaxNorm;
    throw py::value_error("metric must be 'cosine' or 'maxnorm', got '" + metric + "'");
}

static std::vector<double> float_vector(const py::object& o, const char* name, int64_t n) {
    if (!py::isinstance<py::array>(o)) throw py::value_error(std::string(name) + " must be a numpy array, got " + describe(o));
    py::array a = py::reinterpret_borrow<py::array>(o);
    if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be 1-D, got " + std::to_string(a.ndim()) + "-D");
    if (a.dtype().kind() != 'f') throw py::value_error(std::string(name) + " must be a float array, got " + py::str(a.dtype()).cast<std::string>());
    if (static_cast<int64_t>(a.shape(0)) != n)
        throw py::value_error(std::string(name) + " must have one entry per instance (" + std::to_string(n) +
                              "), got " + std::to_string(a.shape(0)));
    auto d = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!d) throw py::error_already_set();
    std::vector<double> v(d.data(), d.data() + n);
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(v[i])) throw py::value_error(std::string(name) + "[" + std::to_string(i) + "] is not finite");
    return v;
}

static std::vector<int64_t> index_vector(const py::object& o, const char* name, int64_t n, int64_t M) {
    if (!py::isinstance<py::array>(o)) throw py::value_error(std::string(name) + " must be a numpy array, got " + describe(o));
    py::array a = py::reinterpret_borrow<py::array>(o);
    if (a.ndim() != 1) throw py::value_error(std::string(name) + " must be 1-D, got " + std::to_string(a.ndim()) + "-D");
    const char kind = a.dtype().kind();
    if (kind != 'i' && kind != 'u')
        throw py::value_error(std::string(name) + " must be an integer array, got " + py::str(a.dtype()).cast<std::string>());
    if (static_cast<int64_t>(a.shape(0)) != n)
        throw py::value_error(std::string(name) + " must have one entry per instance (" + std::to_string(n) +
                              "), got " + std::to_string(a.shape(0)));
    if (kind == 'u' && a.itemsize() == 8) {  // values >= 2**63 would wrap to negatives: reject them as such
        auto w = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        for (int64_t i = 0; i < n; ++i)
            if (w.data()[i] >= static_cast<uint64_t>(M))
                throw py::value_error(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(w.data()[i]) +
                                      " is not a slot index in [0, " + std::to_string(M) + ")");
    }
    auto d = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!d) throw py::error_already_set();
    std::vector<int64_t> v(d.data(), d.data() + n);
    for (int64_t i = 0; i < n; ++i)
        if (v[i] < 0 || v[i] >= M)
            throw py::value_error(std::string(name) + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                                  " is not a slot index in [0, " + std::to_string(M) + ")");
    return v;
}

struct MeanArg {
    double* p = nullptr;
};

static MeanArg mean_vector(const std::optional<py::object>& o, int64_t D, bool writable) {
    MeanArg m;
    if (!o || o->is_none()) return m;
    if (!py::isinstance<py::array>(*o)) throw py::value_error("mean must be a numpy array of float64, got " + describe(*o));
    py::array a = py::reinterpret_borrow<py::array>(*o);
    if (a.ndim() != 1 || static_cast<int64_t>(a.shape(0)) != D)
        throw py::value_error("mean must have shape [D] = [" + std::to_string(D) + "]");
    if (!py::isinstance<py::array_t<double>>(a)) throw py::value_error("mean must have dtype float64, got " + py::str(a.dtype()).cast<std::string>());
    const int flags = a.flags();
    if (!(flags & py::array::c_style) || !(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error("mean must be contiguous and aligned");
    if (writable && !a.writeable()) throw py::value_error("mean must be writable (it is updated in place)");
    m.p = static_cast<double*>(const_cast<void*>(a.data()));
    for (int64_t k = 0; k < D; ++k)
        if (!std::isfinite(m.p[k])) throw py::value_error("mean[" + std::to_string(k) + "] is not finite");
    return m;
}

// First row whose norm is not finite (NaN/inf element, or squared norm overflowing float32), or -1.
static int64_t bad_row(const float* n, int64_t rows) {
    for (int64_t i = 0; i < rows; ++i)
        if (!std::isfinite(n[i])) return i;
    return -1;
}

static std::string not_finite(const char* name, int64_t row) {
    return std::string(name) + " row " + std::to_string(row) +
           " contains NaN or infinite values (or values so large that its squared norm overflows float32)";
}

[[noreturn]] static void raise(const std::string& err) { throw py::value_error(err); }

// ------------------------------------------------------------------------------------------------------
// Operations (compute parts run without the GIL and report errors through a string).

static void norms_checked(const float* X, int64_t n, int64_t D, float* out, const char* name, std::string& err) {
    ops().norms(X, n, D, out);
    const int64_t b = bad_row(out, n);
    if (b >= 0) err = not_finite(name, b);
}

py::array_t<float> similarity(py::object z_, py::object mem_, const std::string& metric_) {
    const Mat z = matrix(z_, "z", false), mem = matrix(mem_, "mem", false);
    check_pair(z, mem);
    const int metric = parse_metric(metric_);
    const int64_t B = z.rows, M = mem.rows, D = mem.cols;
    py::array_t<float> out({B, M});
    float* o = out.mutable_data();
    std::string err;
    {
        py::gil_scoped_release release;
        std::vector<float> zn(B), an(M);
        norms_checked(z.p, B, D, zn.data(), "z", err);
        if (err.empty() && B > 0) {
            ops().gemm(z.p, B, mem.p, M, D, o, M, metric, zn.data(), an.data());
            const int64_t b = bad_row(an.data(), M);
            if (b >= 0) err = not_finite("mem", b);
        } else if (err.empty()) {
            norms_checked(mem.p, M, D, an.data(), "mem", err);
        }
    }
    if (!err.empty()) raise(err);
    return out;
}

py::tuple topk(py::object z_, py::object mem_, int64_t k, const std::string& metric_) {
    const Mat z = matrix(z_, "z", false), mem = matrix(mem_, "mem", false);
    check_pair(z, mem);
    const int metric = parse_metric(metric_);
    const int64_t B = z.rows, M = mem.rows, D = mem.cols;
    if (k < 1 || k > M)
        throw py::value_error("k must be in [1, M] = [1, " + std::to_string(M) + "], got " + std::to_string(k));
    py::array_t<float> values({B, k});
    py::array_t<int64_t> indices({B, k});
    float* vo = values.mutable_data();
    int64_t* io = indices.mutable_data();
    std::string err;
    {
        py::gil_scoped_release release;
        std::vector<float> zn(B), an(M), S(static_cast<size_t>(B) * M);
        norms_checked(z.p, B, D, zn.data(), "z", err);
        if (err.empty()) {
            if (B > 0) {
                ops().gemm(z.p, B, mem.p, M, D, S.data(), M, metric, zn.data(), an.data());
                const int64_t b = bad_row(an.data(), M);
                if (b >= 0) err = not_finite("mem", b);
            } else {
                norms_checked(mem.p, M, D, an.data(), "mem", err);
            }
        }
        if (err.empty()) {
            std::vector<int64_t> idx(M);
            for (int64_t i = 0; i < B; ++i) {
                const float* row = S.data() + i * M;
                std::iota(idx.begin(), idx.end(), int64_t{0});
                // Largest first; ties by lower index (a strict total order, so the result is deterministic).
                auto better = [row](int64_t a, int64_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
                if (k < M) std::nth_element(idx.begin(), idx.begin() + k, idx.end(), better);
                std::sort(idx.begin(), idx.begin() + k, better);
                for (int64_t t = 0; t < k; ++t) {
                    vo[i * k + t] = row[idx[t]];
                    io[i * k + t] = idx[t];
                }
            }
        }
    }
    if (!err.empty()) raise(err);
    return py::make_tuple(values, indices);
}

// S_i of Eq. 4 (mean of the top-k similarities) for every row of z, in double.
static void mean_topk_similarity(const Mat& z, const Mat& mem, int metric, int64_t k, const double* mean,
                                 double* S, std::string& err) {
    const Ops& op = ops();
    const int64_t B = z.rows, M = mem.rows, D = mem.cols;
    std::vector<float> zn(B);
    norms_checked(z.p, B, D, zn.data(), "z", err);
    if (!err.empty()) return;
    if (metric == kCosine && k == M) {
        // Fact 1: mean_j cos(z_i, A_j) = z_i/|z_i| . mean_j A_j/|A_j|.
        std::vector<double> sum;
        if (mean == nullptr) {
            sum.assign(D, 0.0);
            std::vector<float> an(M);
            op.accum_normalized(mem.p, M, D, an.data(), sum.data());
            const int64_t b = bad_row(an.data(), M);
            if (b >= 0) {
                err = not_finite("mem", b);
                return;
            }
            for (int64_t t = 0; t < D; ++t) sum[t] /= static_cast<double>(M);
            mean = sum.data();
        }
        for (int64_t i = 0; i < B; ++i)
            S[i] = zn[i] > 0.0f ? op.dot_fd(z.p + i * D, mean, D) / static_cast<double>(zn[i]) : 0.0;
        return;
    }
    std::vector<float> an(M);
    if (metric == kMaxNorm && k == M) {
        // mean_j z.A_j / max(|z|, |A_j|) = (z . P(|z|) / |z| + z . Q(|z|)) / M with P(t) = sum over
        // |A_j| <= t of A_j and Q(t) = sum over |A_j| > t of A_j/|A_j|: one sweep over rows and memory
        // sorted by norm, O((M + B) D) instead of O(B M D).
        norms_checked(mem.p, M, D, an.data(), "mem", err);
        if (!err.empty()) return;
        std::vector<int64_t> oa(M), oz(B);
        std::iota(oa.begin(), oa.end(), int64_t{0});
        std::iota(oz.begin(), oz.end(), int64_t{0});
        std::stable_sort(oa.begin(), oa.end(), [&](int64_t a, int64_t b) { return an[a] < an[b]; });
        std::stable_sort(oz.begin(), oz.end(), [&](int64_t a, int64_t b) { return zn[a] < zn[b]; });
        std::vector<double> P(D, 0.0), Q(D, 0.0);
        for (int64_t j = 0; j < M; ++j)
            if (an[j] > 0.0f) op.axpy_d(Q.data(), mem.p + j * D, 1.0 / an[j], D);
        int64_t p = 0;
        for (int64_t t = 0; t < B; ++t) {
            const int64_t i = oz[t];
            while (p < M && an[oa[p]] <= zn[i]) {
                const int64_t j = oa[p++];
                if (an[j] > 0.0f) {
                    op.axpy_d(P.data(), mem.p + j * D, 1.0, D);
                    op.axpy_d(Q.data(), mem.p + j * D, -1.0 / an[j], D);
                }
            }
            const float* zi = z.p + i * D;
            S[i] = zn[i] > 0.0f
                       ? (op.dot_fd(zi, P.data(), D) / zn[i] + op.dot_fd(zi, Q.data(), D)) / static_cast<double>(M)
                       : 0.0;
        }
        return;
    }
    // General top-k: similarities, then the k largest of each row.
    std::vector<float> Sm(static_cast<size_t>(B) * M);
    if (B > 0) {
        op.gemm(z.p, B, mem.p, M, D, Sm.data(), M, metric, zn.data(), an.data());
        const int64_t b = bad_row(an.data(), M);
        if (b >= 0) {
            err = not_finite("mem", b);
            return;
        }
    }
    for (int64_t i = 0; i < B; ++i) {
        float* row = Sm.data() + i * M;
        if (k < M) std::nth_element(row, row + (k - 1), row + M, std::greater<float>());
        double s = 0.0;
        for (int64_t t = 0; t < k; ++t) s += row[t];
        S[i] = s / static_cast<double>(k);
    }
}

py::array_t<float> weights(py::object z_, py::object mem_, std::optional<int64_t> k_, double phi,
                           const std::string& metric_, std::optional<py::object> mean_) {
    const Mat z = matrix(z_, "z", false), mem = matrix(mem_, "mem", false);
    check_pair(z, mem);
    const int metric = parse_metric(metric_);
    const int64_t B = z.rows, M = mem.rows, D = mem.cols;
    const int64_t k = k_ ? *k_ : M;
    if (k < 1 || k > M)
        throw py::value_error("k must be in [1, M] = [1, " + std::to_string(M) + "], got " + std::to_string(k));
    if (!(phi >= 0.0)) throw py::value_error("phi must be >= 0, got " + py::str(py::float_(phi)).cast<std::string>());
    const MeanArg mean = mean_vector(mean_, D, false);
    if (mean.p != nullptr && !(metric == kCosine && k == M))
        throw py::value_error("a precomputed mean only applies to metric='cosine' with k = M");
    py::array_t<float> out(B);
    float* o = out.mutable_data();
    std::string err;
    {
        py::gil_scoped_release release;
        std::vector<double> S(B);
        mean_topk_similarity(z, mem, metric, k, mean.p, S.data(), err);
        if (err.empty())
            for (int64_t i = 0; i < B; ++i) o[i] = static_cast<float>(std::min(phi, std::max(0.0, S[i])));  // Eq. 5
    }
    if (!err.empty()) raise(err);
    return out;
}

py::array_t<int64_t> replace(py::object mem_, py::object z_, py::object u_, py::object r_, double psi,
                             const std::string& metric_, std::optional<py::object> mean_) {
    const Mat mem = matrix(mem_, "mem", true);
    Mat z = matrix(z_, "z", false);
    check_pair(z, mem);
    const int metric = parse_metric(metric_);
    const int64_t B = z.rows, M = mem.rows, D = mem.cols;
    if (!(psi >= 0.0 && psi <= 1.0)) throw py::value_error("psi must be in [0, 1], got " + py::str(py::float_(psi)).cast<std::string>());
    const std::vector<double> u = float_vector(u_, "u", B);
    const std::vector<int64_t> r = index_vector(r_, "r", B, M);
    const MeanArg mean = mean_vector(mean_, D, true);
    // z may be a view of mem: take a private copy so that writing slots cannot change later instances.
    std::vector<float> zcopy;
    if (z.begin < mem.end && mem.begin < z.end) {
        zcopy.assign(z.p, z.p + B * D);
        z.p = zcopy.data();
    }
    py::array_t<int64_t> out(B);
    int64_t* slots = out.mutable_data();
    std::string err;
    {
        py::gil_scoped_release release;
        const Ops& op = ops();
        std::vector<float> zn(B), an(M);
        norms_checked(z.p, B, D, zn.data(), "z", err);
        std::vector<int64_t> sel;  // instances taking the argmin branch (Alg. 1: with probability psi)
        for (int64_t i = 0; i < B; ++i)
            if (u[i] < psi) sel.push_back(i);
        const int64_t ns = static_cast<int64_t>(sel.size());
        std::vector<float> S, G;
        if (err.empty()) {
            if (ns > 0) {
                std::vector<float> Zs(static_cast<size_t>(ns) * D), zns(ns);
                for (int64_t s = 0; s < ns; ++s) {
                    std::memcpy(Zs.data() + s * D, z.p + sel[s] * D, sizeof(float) * D);
                    zns[s] = zn[sel[s]];
                }
                S.resize(static_cast<size_t>(ns) * M);  // F(z_i, A_j) for the initial memory
                op.gemm(Zs.data(), ns, mem.p, M, D, S.data(), M, metric, zns.data(), an.data());
                // z_i' . z_i for the column updates; row s only needs the earlier instances i < sel[s] (the
                // lower triangle), so each chunk of 8 rows stops at the columns its last row needs.
                G.resize(static_cast<size_t>(ns) * B);
                for (int64_t s0 = 0; s0 < ns; s0 += 8) {
                    const int64_t s1 = std::min(ns, s0 + 8);
                    op.gemm(Zs.data() + s0 * D, s1 - s0, z.p, sel[s1 - 1], D, G.data() + s0 * B, B, kRaw, nullptr,
                            nullptr);
                }
                const int64_t b = bad_row(an.data(), M);
                if (b >= 0) err = not_finite("mem", b);
            } else {
                norms_checked(mem.p, M, D, an.data(), "mem", err);
            }
        }
        if (err.empty()) {
            std::vector<int32_t> owner(M, -1);  // instance whose features a slot holds now
            std::vector<int64_t> touched;
            int64_t s = 0;
            for (int64_t i = 0; i < B; ++i) {
                int64_t slot;
                if (u[i] < psi) {
                    float* row = S.data() + s * M;
                    const float* g = G.data() + s * B;
                    ++s;
                    // Only the columns replaced so far changed: their value is F(z_i, z_owner).
                    if (metric == kCosine) {
                        const float iz = inv_norm(zn[i]);
                        for (const int64_t j : touched) row[j] = scale_cosine(g[owner[j]], iz, inv_norm(zn[owner[j]]));
                    } else {
                        for (const int64_t j : touched) row[j] = scale_maxnorm(g[owner[j]], zn[i], zn[owner[j]]);
                    }
                    slot = 0;  // least similar slot, lowest index on ties
                    float best = row[0];
                    for (int64_t j = 1; j < M; ++j)
                        if (row[j] < best) {
                            best = row[j];
                            slot = j;
                        }
                } else {
                    slot = r[i];
                }
                if (owner[slot] < 0) touched.push_back(slot);
                owner[slot] = static_cast<int32_t>(i);
                slots[i] = slot;
            }
            // Write in batch order (the last writer of a slot wins), keeping the tracked mean current.
            const double invM = 1.0 / static_cast<double>(M);
            for (int64_t i = 0; i < B; ++i) {
                float* a = mem.p + slots[i] * D;
                if (mean.p != nullptr) {
                    float on;
                    op.norms(a, 1, D, &on);
                    if (on > 0.0f) op.axpy_d(mean.p, a, -invM / on, D);
                    if (zn[i] > 0.0f) op.axpy_d(mean.p, z.p + i * D, invM / zn[i], D);
                }
                std::memcpy(a, z.p + i * D, sizeof(float) * D);
            }
        }
    }
    if (!err.empty()) raise(err);
    return out;
}

py::array_t<double> normalized_mean(py::object mem_) {
    const Mat mem = matrix(mem_, "mem", false);
    if (mem.rows < 1) throw py::value_error("mem is empty: the memory needs at least one slot (M >= 1)");
    if (mem.cols < 1) throw py::value_error("feature dimension D must be >= 1");
    const int64_t M = mem.rows, D = mem.cols;
    py::array_t<double> out(D);
    double* o = out.mutable_data();
    std::string err;
    {
        py::gil_scoped_release release;
        std::fill(o, o + D, 0.0);
        std::vector<float> an(M);
        ops().accum_normalized(mem.p, M, D, an.data(), o);
        const int64_t b = bad_row(an.data(), M);
        if (b >= 0) err = not_finite("mem", b);
        for (int64_t t = 0; t < D; ++t) o[t] /= static_cast<double>(M);
    }
    if (!err.empty()) raise(err);
    return out;
}

}  // namespace mtl_memory

PYBIND11_MODULE(_memory, m) {
    using namespace mtl_memory;
    using namespace pybind11::literals;
    m.doc() = "MAMT memory kernel (similarity, top-k, sequential replacement, weights); see mtl.memory";
    m.attr("ABI_VERSION") = 2;

    if (const char* env = std::getenv("MTL_MEMORY_ISA")) isa_table().try_select(env);

    m.def("similarity", &similarity, "z"_a, "mem"_a, "metric"_a = "cosine",
          "F(z_i, A_j) for all pairs (Eq. 2): float32 [B, M].");
    m.def("topk", &topk, "z"_a, "mem"_a, "k"_a, "metric"_a = "cosine",
          "The k largest similarities of each row, descending (ties: lower index): (values, int64 indices).");
    m.def("weights", &weights, "z"_a, "mem"_a, "k"_a = py::none(), "phi"_a = 1.0, "metric"_a = "cosine",
          "mean"_a = py::none(),
          "tau_i = min(phi, max(0, S_i)), S_i = mean of the top-k similarities (Eqs. 4-5): float32 [B]. "
          "mean: optional precomputed mean of the normalised memory (cosine, k = M only).");
    m.def("replace", &replace, "mem"_a, "z"_a, "u"_a, "r"_a, "psi"_a = 0.8, "metric"_a = "cosine",
          "mean"_a = py::none(),
          "Sequential replacement (Eq. 3, Alg. 1 lines 4-12), in place on mem: instance i takes the least "
          "similar slot if u[i] < psi, else slot r[i]. Returns the slots (int64 [B]). mean: optional float64 "
          "[D] mean of the normalised memory, updated in place.");
    m.def("normalized_mean", &normalized_mean, "mem"_a, "mean_j A_j / |A_j| (zero rows count as 0): float64 [D].");
    mtl_isa::IsaTable<Ops>::bind(m, isa_table());
}
