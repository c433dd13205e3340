"""Task ``sst2``: SST-2, binary sentiment of movie-review phrases (Socher et al. 2013), accuracy as in
GLUE (Wang et al., ICLR 2019)."""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class SST2(Task):
    description = "SST-2: is the movie-review sentence positive or negative? (accuracy)"
    text_columns = ("sentence",)
    label_column = "label"
    labels = ("negative", "positive")  # nyu-mll/glue ClassLabel order: 0, 1
    label_aliases = {"0": "negative", "1": "positive"}
    metrics = ("accuracy",)
    glue = GlueLayout(folder="SST-2", files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"})
    hub = ("nyu-mll/glue", "sst2")


@hookimpl
def register_tasks(register):
    register("sst2", SST2, description=SST2.description, aliases=("sst-2",))
