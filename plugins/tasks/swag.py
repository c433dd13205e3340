"""Task ``swag``: Situations With Adversarial Generations (Zellers et al., EMNLP 2018): which of four endings
follows the context? Multiple choice, accuracy. Each choice is (sent1, sent2 + ending), as BERT reads it
(Devlin et al. 2019, §4.4). The Hub's ``allenai/swag`` (configuration ``regular``) and the original CSV files
(``--data swag.train=train.csv``) have the same columns."""

from __future__ import annotations

from mtl import Task, hookimpl


class SWAG(Task):
    description = "SWAG: which of four endings follows the video caption? (multiple choice; accuracy)"
    type = "multiple-choice"
    text_columns = ("sent1",)
    choice_prefix_column = "sent2"
    choice_columns = ("ending0", "ending1", "ending2", "ending3")
    num_choices = 4
    labels = None
    metrics = ("accuracy",)
    hub = ("allenai/swag", "regular")
    hub_splits = {"train": "train", "dev": "validation"}


@hookimpl
def register_tasks(register):
    register("swag", SWAG, description=SWAG.description)
