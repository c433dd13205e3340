"""The version of mtl, written here only (pyproject.toml reads it; ``mtl.__version__`` re-exports it)."""

__version__ = "0.1.0"
