"""Placeholder: commands of this group land with issue 5."""


def register(app) -> None:
    """Add this module's commands to the `mtl` application."""
