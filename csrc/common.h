// Shared definitions of the MAMT memory kernel (csrc/memory.cpp, csrc/kernel_impl.h).
//
// Everything here is plain IEEE float arithmetic without additions, so it rounds identically in every
// instruction-set variant of the kernel: the similarity of a pair is the same bit pattern whether it was
// computed in the B x M product or in the B x B product used for column updates during replacement.
#pragma once

#include <cstdint>

namespace mtl_memory {

enum Metric : int {
    kRaw = 0,      // plain dot products (internal)
    kCosine = 1,   // z.a / (|z| |a|), 0 when either norm is 0
    kMaxNorm = 2,  // z.a / max(|z|, |a|) (the paper's Eq. 2), 0 when both norms are 0
};

inline float inv_norm(float n) { return n > 0.0f ? 1.0f / n : 0.0f; }

// Similarity from a dot product d and the two norms (and, for cosine, their reciprocals).
// Used by the GEMM epilogue and by the column updates of sequential replacement, so both agree bit for bit.
inline float scale_cosine(float d, float inv_x, float inv_y) { return (d * inv_x) * inv_y; }

inline float scale_maxnorm(float d, float nx, float ny) {
    const float m = nx > ny ? nx : ny;
    return m > 0.0f ? d / m : 0.0f;
}

}  // namespace mtl_memory
