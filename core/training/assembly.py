"""Assembling a planned run (:class:`mtl.training.plan.RunPlan`): its examples loaded and encoded, the model built,
the number of steps, the data streams, and the plugins set up on the model, each with a generator from the seed.
Nothing is written. ``t`` is the trainer whose attributes receive the parts."""

from __future__ import annotations

import math

import torch

from mtl.contract import loader
from mtl.data.batching import Encoded, TaskStream, encode
from mtl.errors import DataError, OptionError
from mtl.model.context import Run
from mtl.model.multitask import MultiTaskModel
from mtl.training import finetune


def load_examples(t) -> None:
    c, plan = t.config, t.plan
    t.train_examples, t.eval_examples = {}, {}
    for name, task in t.tasks.items():
        source = plan.sources[(name, task.train_split)]
        examples = task.load(task.train_split, data_dir=source.data_dir, file=source.file,
                             limit=c.task_limits.get(name, c.limit))
        if not examples.labelled:
            raise DataError(f"task {name!r}: the training data in {examples.source} has no labels")
        t.train_examples[name] = examples
        for split in task.eval_splits:
            source = plan.sources[(name, split)]
            t.eval_examples[(name, split)] = task.load(split, data_dir=source.data_dir, file=source.file,
                                                       limit=c.eval_limit)


def build_model(t) -> None:
    backbone = loader.create("backbone", t.config.backbone, **t.plan.backbone_options)
    t.model = MultiTaskModel(backbone, {n: task.num_outputs for n, task in t.tasks.items()}, t.config.dropout,
                             tasks=t.tasks)


def encode_all(t) -> None:
    c, tokenizer = t.config, t.model.backbone.tokenizer
    for name, task in t.tasks.items():  # room for the special tokens and one token of each text
        texts = len(task.text_columns)
        needed = tokenizer.num_special_tokens_to_add(pair=texts == 2) + texts
        if c.max_length < needed:
            raise OptionError(f"--max-length {c.max_length} is too short for task {name!r}: the tokenizer needs "
                              f"{needed} tokens for one token of each of its {texts} text(s) with "
                              f"{needed - texts} special tokens")
    t.train_data: dict[str, Encoded] = {
        n: encode(ex, tokenizer, c.max_length, t.tasks[n], cache=c.data_cache) for n, ex in t.train_examples.items()
    }
    t.eval_data: dict[tuple[str, str], Encoded] = {
        key: encode(ex, tokenizer, c.max_length, t.tasks[key[0]], cache=c.data_cache)
        for key, ex in t.eval_examples.items()
    }


def plan_steps(t) -> None:
    """Optimisation steps: an epoch is every task's training data once in batches of batch_size × grad_accum."""
    c = t.config
    t.sizes = {n: len(d) for n, d in t.train_data.items()}  # training examples per task
    per_step = c.batch_size * c.grad_accum
    t.steps_per_epoch = sum(math.ceil(s / per_step) for s in t.sizes.values())
    t.total_steps = c.max_steps or c.epochs * t.steps_per_epoch
    t.epochs = math.ceil(t.total_steps / t.steps_per_epoch)


def set_up_streams_and_plugins(t) -> None:
    """The data streams, the sampler and the weighting, each with its own generator drawn from the seed."""
    c, device = t.config, t.engine.device
    seeds = torch.Generator().manual_seed(c.seed)

    def draw() -> int:
        return int(torch.randint(0, 2**62, (1,), generator=seeds))

    t.streams = {n: TaskStream(d, c.batch_size, torch.Generator().manual_seed(draw()), c.group_by_length)
                 for n, d in t.train_data.items()}
    t.sampler.setup(t.sizes, c.target, t.total_steps, torch.Generator().manual_seed(draw()))
    t.model.to(device)
    t.run = Run(c, t.model, t.tasks, c.target, t.train_data, device, torch.Generator().manual_seed(draw()),
                t.total_steps, t.steps_per_epoch)
    t.weighting.setup(t.run)
    t.model.to(device)  # modules a weighting added
    t.engine.use_cpu_kernels(t.model)
    if c.parent:  # `mtl finetune`: start from the parent run's backbone and target head
        finetune.load_parent(t.model, c.parent, c.target)
    if t.regularizer is not None:  # after the weighting: the model is complete
        try:
            t.regularizer.setup(t.run)
        except ValueError as exc:
            raise OptionError(f"regularizer {c.regularizer!r}: {exc}") from None
