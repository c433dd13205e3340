"""Builds the C++ kernels (csrc/) with pybind11: MAMT's memory `mtl._memory` and dropout `mtl._dropout`.

Everything else is in pyproject.toml."""
import platform

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

# Portable flags only: a wheel built here must run on any x86-64 or arm64 machine. Wider vector units
# are reached through runtime dispatch inside the kernel, never through -march=native.
# -ffp-contract=fast: fuse a*b+c into FMA wherever the unit has one (the ISO -std=c++17 default is off).
compile_args = ["-O3", "-fno-math-errno", "-ffp-contract=fast", "-fvisibility=hidden", "-Wno-psabi"]
if platform.system() == "Windows":
    compile_args = ["/O2"]

setup(
    ext_modules=[
        Pybind11Extension(
            "mtl._memory",
            sorted(["csrc/memory.cpp"]),
            depends=["csrc/common.h", "csrc/kernel_impl.h", "csrc/isa_table.h"],  # headers: rebuild when they change
            cxx_std=17,
            extra_compile_args=compile_args,
        ),
        Pybind11Extension(
            "mtl._dropout",
            ["csrc/dropout.cpp"],
            depends=["csrc/isa_table.h"],
            cxx_std=17,
            extra_compile_args=compile_args,
        ),
    ],
    cmdclass={"build_ext": build_ext},
)
