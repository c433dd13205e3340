"""The progress bar of `mtl run`: steps, the running loss of each task, the ETA, and each epoch's metrics."""

from __future__ import annotations


class Progress:
    """A rich progress bar with the running loss of each task and the ETA (stderr; off when not wanted)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.smoothed: dict[str, float] = {}

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.console = Console(stderr=True)
            self.bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
                                console=self.console, transient=False)
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=self.total, losses="")
        return self

    def update(self, completed: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        for name, value in losses.items():
            old = self.smoothed.get(name)
            self.smoothed[name] = value if old is None else 0.9 * old + 0.1 * value
        text = "  ".join(f"{n} {v:.3f}" for n, v in self.smoothed.items())
        self.bar.update(self.task, completed=completed, losses=text)

    def note(self, epoch: int, results: dict, target: str | None) -> None:
        if not self.enabled:
            return
        parts = []
        for task, splits in results.items():
            for split, metrics in splits.items():
                shown = ", ".join(f"{m} {v:.4f}" for m, v in metrics.items())
                parts.append(f"{task}/{split}: {shown}")
        self.bar.console.print(f"epoch {epoch}: " + " | ".join(parts))

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False
