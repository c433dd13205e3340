"""Task ``cola``: CoLA, single-sentence grammatical acceptability (Warstadt et al. 2019), scored by
Matthews correlation as in GLUE (Wang et al., ICLR 2019).

GLUE's ``CoLA/train.tsv`` and ``dev.tsv`` have no header: source, label, original judgement, sentence.
``test.tsv`` has a header (``index``, ``sentence``) and no labels.
"""

from __future__ import annotations

from mtl import GlueLayout, Task, hookimpl


class CoLA(Task):
    description = "CoLA: is the sentence grammatically acceptable? (Matthews correlation)"
    text_columns = ("sentence",)
    label_column = "label"
    labels = ("unacceptable", "acceptable")  # nyu-mll/glue ClassLabel order: 0, 1
    label_aliases = {"0": "unacceptable", "1": "acceptable"}
    metrics = ("mcc",)
    glue = GlueLayout(
        folder="CoLA",
        files={"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"},
        header=False,
        columns={"label": 1, "sentence": 3},
    )
    hub = ("nyu-mll/glue", "cola")


@hookimpl
def register_tasks(register):
    register("cola", CoLA, description=CoLA.description)
