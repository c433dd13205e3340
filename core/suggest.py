"""'Did you mean' suggestions for unknown names."""

import difflib


def unknown(what: str, name: str, valid) -> str:
    """One line: the unknown name, the closest valid names, and all valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(valid) if valid else "(none)"
    return f"unknown {what} {name!r}.{hint} Valid: {listing}"
