"""Is the Hugging Face hub usable? Offline switches and a quick reachability probe, so that loading data
or a model fails in seconds with a clear reason instead of retrying for a minute."""

from __future__ import annotations

import os

HUB_HOST = "huggingface.co"


def offline() -> str | None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    return None


def probe(timeout: float = 3.0) -> str | None:
    """Why the hub cannot be reached (a quick TCP connect), or None. Skipped when a proxy is configured."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    import socket
    import threading
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or f"https://{HUB_HOST}")
    host, port = endpoint.hostname or HUB_HOST, endpoint.port or (80 if endpoint.scheme == "http" else 443)
    outcome: list[str | None] = []

    def connect() -> None:  # in a thread, because name resolution ignores the socket timeout
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(f"{host}: {exc.strerror or type(exc).__name__}")

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"{host}: no answer within {timeout:g} s"


def unavailable() -> str | None:
    """Why the hub cannot be used now (offline switch or no connection), or None."""
    return offline() or probe()
