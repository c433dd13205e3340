// mtl._dropout: inverted dropout (Srivastava et al., "Dropout: a simple way to prevent neural networks from
// overfitting", JMLR 2014, Eq. for the training-time thinning y = r * x / (1 - p), r ~ Bernoulli(1 - p)) with
// masks from a counter-based hash instead of a stored random tensor. Used by mtl.model.dropout on CPU tensors.
//
//   scale(x, out, p, seed, threads)   out[i] = x[i] * keep(seed, i) / (1 - p)
//
// keep(seed, i) depends only on the seed and the element's flat index i, so the backward pass regenerates the
// forward's mask from the seed (nothing is stored between them), and the result does not depend on how many
// threads computed it. The index goes through two keyed rounds of a 32-bit integer hash (the "lowbias32"
// finaliser, C. Wellons, "Prospecting for hash functions", 2018); element i is kept when the hash is at least
// round(p * 2^32), so the dropout rate is p to within 2^-33 and, within any 2^32 consecutive elements, each hash
// value occurs exactly once (the hash is a bijection of the low 32 bits of i for a fixed key).
//
// x and out are C-contiguous numpy arrays of the same size: float32, or bfloat16 passed as its int16 bit pattern
// (torch.Tensor.view(torch.int16)). out may be x (in place). The GIL is released while computing. Wrong input
// raises ValueError. The loops are compiled once per instruction set (x86-64: AVX-512 with BW, AVX2, baseline)
// and chosen by CPUID (set_isa picks another, for tests); other architectures get the portable build.

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

#include "isa_table.h"

namespace py = pybind11;

namespace mtl_dropout {

struct Key {
    uint32_t k0, k1;
    uint32_t threshold;  // keep when hash >= threshold
    float scale;         // 1 / (1 - threshold / 2^32)
};

static inline uint32_t lowbias32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

// The factor element i is multiplied by: scale when kept, 0 when dropped.
static inline float factor(const Key& key, uint32_t k1, uint32_t lo) {
    const uint32_t h = lowbias32(lowbias32(lo ^ key.k0) ^ k1);
    return h >= key.threshold ? key.scale : 0.0f;
}

static inline float bf16_to_float(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// Round to nearest even, as torch rounds float to bfloat16; NaN stays a (quiet) NaN.
static inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    const uint32_t rounded = (u + 0x7fffU + ((u >> 16) & 1U)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40U;
    return static_cast<uint16_t>((u & 0x7fffffffU) > 0x7f800000U ? nan : rounded);
}

// How an element type is read as float and written back: float32 as is, bfloat16 from/to its bits.
struct F32 {
    using T = float;
    static inline float load(float v) { return v; }
    static inline float store(float v) { return v; }
};
struct BF16 {
    using T = uint16_t;
    static inline float load(uint16_t b) { return bf16_to_float(b); }
    static inline uint16_t store(float f) { return float_to_bf16(f); }
};

// Elements [begin, end) of the flat index space; within one 2^32 block the key's high word is fixed, so the
// inner loop runs on 32-bit indices and vectorises. Defined once per instruction set (MTL_LOOPS below).
#define MTL_LOOPS(ATTR)                                                                                        \
    template <class E>                                                                                        \
    ATTR static void scale_loop(const typename E::T* x, typename E::T* out, int64_t begin, int64_t end,       \
                                Key key) {                                                                    \
        for (int64_t block = begin; block < end;) {                                                           \
            const int64_t stop = std::min<int64_t>(end, (block | 0xffffffffLL) + 1);                         \
            const uint32_t k1 = key.k1 ^ lowbias32(static_cast<uint32_t>(block >> 32));                      \
            const uint32_t lo0 = static_cast<uint32_t>(block);                                                \
            const int64_t n = stop - block;                                                                   \
            const typename E::T* xb = x + block;                                                              \
            typename E::T* ob = out + block;                                                                  \
            for (int64_t j = 0; j < n; ++j)                                                                   \
                ob[j] = E::store(E::load(xb[j]) * factor(key, k1, lo0 + static_cast<uint32_t>(j)));          \
            block = stop;                                                                                     \
        }                                                                                                     \
    }                                                                                                         \
    ATTR static void scale_f32(const float* x, float* out, int64_t begin, int64_t end, Key key) {              \
        scale_loop<F32>(x, out, begin, end, key);                                                             \
    }                                                                                                         \
    ATTR static void scale_bf16(const uint16_t* x, uint16_t* out, int64_t begin, int64_t end, Key key) {       \
        scale_loop<BF16>(x, out, begin, end, key);                                                            \
    }

namespace isa_base {
MTL_LOOPS()
}  // namespace isa_base

#if defined(__GNUC__) && defined(__x86_64__)
#define MTL_X86 1
namespace isa_avx2 {
MTL_LOOPS(__attribute__((target("avx2,fma"))))
}  // namespace isa_avx2
namespace isa_avx512 {
MTL_LOOPS(__attribute__((target("avx512f,avx512bw,avx2,fma"))))
}  // namespace isa_avx512
#endif

struct Loops {
    const char* name;
    void (*f32)(const float*, float*, int64_t, int64_t, Key);
    void (*bf16)(const uint16_t*, uint16_t*, int64_t, int64_t, Key);
};

// The instruction sets this CPU can run, narrowest first; the widest is used unless set_isa chose another.
static mtl_isa::IsaTable<Loops>& isa_table() {
    static mtl_isa::IsaTable<Loops> table([] {
        std::vector<Loops> found{Loops{"base", isa_base::scale_f32, isa_base::scale_bf16}};
#if defined(MTL_X86)
        __builtin_cpu_init();
        const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        if (avx2) found.push_back(Loops{"avx2", isa_avx2::scale_f32, isa_avx2::scale_bf16});
        if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
            found.push_back(Loops{"avx512", isa_avx512::scale_f32, isa_avx512::scale_bf16});
#endif
        return found;
    }(), "dropout kernel");
    return table;
}

static const Loops& loops() { return isa_table().current(); }

static Key make_key(double p, uint64_t seed) {
    if (!(p >= 0.0 && p < 1.0)) throw py::value_error("dropout kernel: p must be in [0, 1), got " + std::to_string(p));
    Key key;
    // two independent 32-bit keys from the 64-bit seed (splitmix64 finaliser, so nearby seeds give unrelated keys)
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    key.k0 = static_cast<uint32_t>(z);
    key.k1 = static_cast<uint32_t>(z >> 32);
    const double t = std::nearbyint(p * 4294967296.0);
    key.threshold = static_cast<uint32_t>(std::min(t, 4294967295.0));
    key.scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(key.threshold) / 4294967296.0));
    return key;
}

// Split [0, n) into `threads` chunks (multiples of 64 elements, at least 2^16 each) and run fn on each; a chunk
// whose thread cannot be started runs in the calling thread, so a thread limit never aborts the process.
template <class Fn>
static void parallel(int64_t n, int threads, Fn fn) {
    const int64_t min_chunk = int64_t(1) << 16;
    int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, n / min_chunk));
    if (parts == 1) {
        fn(0, n);
        return;
    }
    const int64_t chunk = ((n + parts - 1) / parts + 63) / 64 * 64;
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(parts - 1));
    for (int64_t t = 1; t < parts; ++t) {
        const int64_t b = std::min(n, t * chunk), e = std::min(n, (t + 1) * chunk);
        if (b >= e) continue;
        try {
            pool.emplace_back(fn, b, e);
        } catch (const std::exception&) {  // no thread to be had (a process or memory limit): do it here
            fn(b, e);
        }
    }
    fn(0, std::min(n, chunk));
    for (auto& th : pool) th.join();
}

static void check_pair(const py::array& x, const py::array& out) {
    if (!(x.flags() & py::array::c_style) || !(out.flags() & py::array::c_style))
        throw py::value_error("dropout kernel: x and out must be C-contiguous");
    if (x.size() != out.size())
        throw py::value_error("dropout kernel: x has " + std::to_string(x.size()) + " elements, out " +
                              std::to_string(out.size()));
    if (!out.writeable()) throw py::value_error("dropout kernel: out is read-only");
}

void scale(py::array x, py::array out, double p, uint64_t seed, int threads) {
    check_pair(x, out);
    const Key key = make_key(p, seed);
    const int64_t n = static_cast<int64_t>(x.size());
    threads = std::max(1, std::min(threads, 256));
    const bool f32 = py::isinstance<py::array_t<float>>(x) && py::isinstance<py::array_t<float>>(out);
    const bool bf16 = x.dtype().kind() == 'i' && x.itemsize() == 2 && out.dtype().kind() == 'i' &&
                      out.itemsize() == 2;
    if (!f32 && !bf16)
        throw py::value_error("dropout kernel: x and out must both be float32 or both bfloat16 bits (int16), got " +
                              std::string(py::str(x.dtype())) + " and " + std::string(py::str(out.dtype())));
    if (n == 0) return;
    if (f32) {
        const float* xp = static_cast<const float*>(x.data());
        float* op = static_cast<float*>(out.mutable_data());
        py::gil_scoped_release release;
        parallel(n, threads, [=](int64_t b, int64_t e) { loops().f32(xp, op, b, e, key); });
    } else {
        const uint16_t* xp = static_cast<const uint16_t*>(x.data());
        uint16_t* op = static_cast<uint16_t*>(out.mutable_data());
        py::gil_scoped_release release;
        parallel(n, threads, [=](int64_t b, int64_t e) { loops().bf16(xp, op, b, e, key); });
    }
}

// The keep mask itself (uint8 0/1), for tests and for statistics of the generator.
py::array_t<uint8_t> mask(int64_t n, double p, uint64_t seed) {
    if (n < 0) throw py::value_error("dropout kernel: n must be >= 0");
    const Key key = make_key(p, seed);
    py::array_t<uint8_t> out(n);
    uint8_t* o = out.mutable_data();
    py::gil_scoped_release release;
    for (int64_t i = 0; i < n; ++i) {
        const uint32_t k1 = key.k1 ^ lowbias32(static_cast<uint32_t>(i >> 32));
        o[i] = factor(key, k1, static_cast<uint32_t>(i)) != 0.0f;
    }
    return out;
}

}  // namespace mtl_dropout

PYBIND11_MODULE(_dropout, m) {
    using namespace mtl_dropout;
    using namespace pybind11::literals;
    m.doc() = "Inverted dropout with counter-based masks (regenerated from a seed); see mtl.model.dropout";
    m.attr("ABI_VERSION") = 1;
    m.def("scale", &scale, "x"_a, "out"_a, "p"_a, "seed"_a, "threads"_a = 1,
          "out[i] = x[i] * keep(seed, i) / (1 - p); float32, or bfloat16 as int16 bits; out may be x.");
    m.def("mask", &mask, "n"_a, "p"_a, "seed"_a, "keep(seed, i) for i < n as uint8 0/1.");
    mtl_isa::IsaTable<Loops>::bind(m, isa_table());
    m.def("scale_factor", [](double p) { return make_key(p, 0).scale; }, "p"_a,
          "1 / (1 - p') for the rate p' = round(p 2^32) / 2^32 the kernel applies.");
}
