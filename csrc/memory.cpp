// mtl._memory: the C++17 kernel for MAMT's memory operations (filled in by the MAMT issue).
#include <pybind11/pybind11.h>

namespace py = pybind11;

PYBIND11_MODULE(_memory, m) {
    m.doc() = "MAMT memory kernel (similarity, top-k, sequential replacement, weights)";
    m.attr("ABI_VERSION") = 1;
}
