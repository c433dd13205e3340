"""Task ``cb``: CommitmentBank (de Marneffe et al. 2019; in SuperGLUE, Wang et al., NeurIPS 2019): does the premise
entail, contradict or leave open the hypothesis? Three-way classification, accuracy and macro-F1 (SuperGLUE's
metrics for CB). The Hub's ``aps/super_glue`` (configuration ``cb``) and SuperGLUE's ``CB/{train,val}.jsonl``."""

from __future__ import annotations

from mtl import Task, hookimpl


class CB(Task):
    description = "CB: does the premise entail, contradict or leave open the hypothesis? (accuracy, macro-F1)"
    text_columns = ("premise", "hypothesis")
    labels = ("entailment", "contradiction", "neutral")  # aps/super_glue ClassLabel order
    metrics = ("accuracy", "f1_macro")
    hub = ("aps/super_glue", "cb")
    hub_splits = {"train": "train", "dev": "validation", "test": "test"}


@hookimpl
def register_tasks(register):
    register("cb", CB, description=CB.description)
