"""Which implementation a C++ kernel's operations use: ``"cpp"`` (the compiled kernel) or ``"torch"``.

Each kernel module (``mtl.memory``, ``mtl.model.dropout``) reads its environment variable once at import:
empty chooses the kernel when it is built, ``torch`` forces torch, ``cpp`` requires the kernel.
"""

from __future__ import annotations

import os

from mtl.errors import OptionError


def choose(variable: str, kernel: object | None, name: str) -> str:
    """``"cpp"`` or ``"torch"`` for the kernel module ``name`` (``kernel`` None: not built) from ``variable``.

    An unknown value is an :class:`OptionError` naming the variable; ``cpp`` without the built kernel an ImportError."""
    forced = os.environ.get(variable, "").strip().lower()
    if forced not in ("", "cpp", "torch"):
        raise OptionError(f"{variable} must be 'cpp' or 'torch', got {forced!r}")
    if forced == "cpp" and kernel is None:  # pragma: no cover - depends on the build
        raise ImportError(f"{variable}=cpp but the C++ kernel {name} is not built (pip install -e .)")
    return "cpp" if kernel is not None and forced != "torch" else "torch"
