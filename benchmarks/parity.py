"""Single-task parity: mtl's target-only run against a plain `transformers.Trainer` fine-tune, same settings.

Both fine-tune all-MiniLM-L6-v2 on the target's full training set with benchmarks/settings.py (batch 32, max length
128, lr 5e-5, weight decay 0.01, 10 % linear warm-up then linear decay, clipping 1.0, 3 epochs), evaluate on dev
at every epoch end and keep the best epoch (mtl always does; Trainer with load_best_model_at_end on the same
metric), for seeds 0, 1, 2. Printed per task: both metrics per seed, the means, the paired bootstrap 95 % interval
of mtl − Trainer (dev examples resampled, both frameworks and all seeds on the same resample; the mean over seeds
of each seed's difference), and training examples/s of both (time in training steps only, evaluation and saving
excluded). Each run writes its dev predictions to OUT/<task>/<framework>/seed-<s>.json; a finished run is not run
again, so the script can be stopped and started again.

    pip install -e ".[bench]"
    python benchmarks/parity.py [--tasks mrpc,rte] [--seeds 0,1,2] [--frameworks mtl,trainer] [-o parity-out]
    python benchmarks/parity.py --report -o parity-out        # the table of what is there
    python benchmarks/parity.py --frameworks mtl --group-by-length --label mtl-grouped   # an ablation
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import SETTINGS, encode_for_transformers, glue_dir, run_config, training_arguments  # noqa: E402

PRIMARY = {"mrpc": "f1", "rte": "accuracy", "cola": "mcc", "sst2": "accuracy", "stsb": "pearson", "qnli": "accuracy"}
RESAMPLES = 2000


# ---------------------------------------------------------------------------------------------- one run each
def run_mtl(task_name: str, seed: int, data_dir: str, group_by_length: bool, max_steps: int | None = None) -> dict:
    import torch

    from mtl.data.batching import sorted_batches
    from mtl.training.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        config = run_config(task_name, seed, str(Path(tmp) / "run"), data_dir, group_by_length=group_by_length,
                            max_steps=max_steps)
        started = time.perf_counter()
        trainer = Trainer(config)
        result = trainer.train()
        wall = time.perf_counter() - started
        task, data = trainer.tasks[task_name], trainer.eval_data[(task_name, "dev")]
        predictions = torch.empty(len(data), dtype=torch.long)
        trainer.model.eval()
        with torch.no_grad():
            for positions in sorted_batches(data.lengths, SETTINGS["eval_batch_size"]):
                logits = trainer.model(task_name, data.collate(positions))[0]
                predictions[positions] = task.predict(logits)
    summary = result["summary"]
    return {"predictions": predictions.tolist(), "labels": data.labels.tolist(),
            "metrics": result["eval"][task_name]["dev"], "best_epoch": summary["best_epoch"],
            "train_examples": summary["train_examples"], "train_seconds": summary["train_seconds"],
            "examples_per_second": summary["examples_per_second"], "wall_seconds": wall}


def run_trainer(task_name: str, seed: int, data_dir: str, group_by_length: bool, max_steps: int | None = None) -> dict:
    import numpy as np
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    import mtl
    from mtl.plugins.backbones.minilm import model_path

    hf_logging.set_verbosity_error()
    task = mtl.create("task", task_name)
    tokenizer = AutoTokenizer.from_pretrained(model_path())
    train, _ = encode_for_transformers(task, "train", data_dir, tokenizer)
    dev, labels = encode_for_transformers(task, "dev", data_dir, tokenizer)
    primary = PRIMARY[task_name]

    def compute_metrics(prediction):
        return task.compute_metrics(np.argmax(prediction.predictions, axis=-1), prediction.label_ids)

    class StepTimer(TrainerCallback):
        """Seconds spent in training steps (forward, backward, optimizer), as mtl's train_seconds counts them."""

        seconds, started = 0.0, None

        def on_step_begin(self, args, state, control, **kw):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds += time.perf_counter() - self.started

    timer = StepTimer()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        args = training_arguments(tmp, seed, group_by_length=group_by_length, max_steps=max_steps,
                                  eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                                  metric_for_best_model=primary, greater_is_better=True, save_total_limit=1,
                                  logging_strategy="no")
        set_seed(seed)  # the classifier's initial weights follow the seed, as mtl's head does
        model = AutoModelForSequenceClassification.from_pretrained(model_path(), num_labels=task.num_outputs)
        trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=dev,
                          data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
                          callbacks=[timer])
        trainer.train()
        best_epoch = next((int(round(h["epoch"])) - 1 for h in trainer.state.log_history
                           if h.get(f"eval_{primary}") == trainer.state.best_metric), None)
        output = trainer.predict(dev)
    wall = time.perf_counter() - started
    predictions = np.argmax(output.predictions, axis=-1)
    examples = trainer.state.global_step * SETTINGS["batch_size"]  # the last batch of an epoch may be smaller
    examples = min(examples, len(train) * int(args.num_train_epochs))
    return {"predictions": predictions.tolist(), "labels": list(labels),
            "metrics": task.compute_metrics(predictions, np.asarray(labels)), "best_epoch": best_epoch,
            "train_examples": examples, "train_seconds": timer.seconds,
            "examples_per_second": examples / timer.seconds if timer.seconds else 0.0, "wall_seconds": wall}


RUNNERS = {"mtl": run_mtl, "trainer": run_trainer}


# ---------------------------------------------------------------------------------------------- statistics
def paired_interval(metric: str, mine: list[list[int]], theirs: list[list[int]], labels: list[int],
                    resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """(mean difference, 2.5 %, 97.5 %) of mean_s[metric(mine_s) − metric(theirs_s)] over bootstrap resamples of
    the dev examples (the same resample for every seed and both frameworks): `mtl bench`'s own interval,
    :func:`mtl.study.statistics.paired_bootstrap`."""
    from mtl.study.statistics import paired_bootstrap

    interval = paired_bootstrap(metric, mine, theirs, labels, resamples=resamples, seed=seed)
    return interval["delta"], interval["low"], interval["high"]


# ---------------------------------------------------------------------------------------------- report
def load(out: Path, task: str, label: str, seeds: list[int]) -> dict[int, dict]:
    found = {}
    for seed in seeds:
        path = out / task / label / f"seed-{seed}.json"
        if path.exists():
            found[seed] = json.loads(path.read_text())
    return found


def report(out: Path, tasks: list[str], seeds: list[int], labels: list[str], reference: str) -> None:
    for task in tasks:
        runs = {label: load(out, task, label, seeds) for label in labels}
        runs = {label: r for label, r in runs.items() if r}
        if not runs:
            continue
        metrics = list(next(iter(next(iter(runs.values())).values()))["metrics"])
        print(f"\n### {task.upper()} (dev; best of {SETTINGS['epochs']} epochs; seeds {', '.join(map(str, seeds))})\n")
        print("| framework | " + " | ".join(f"{m} per seed | {m} mean" for m in metrics)
              + " | best epochs | examples/s (mean) |")
        print("|---|" + "---|---:|" * len(metrics) + "---|---:|")
        for label, by_seed in runs.items():
            cells = []
            for m in metrics:
                values = [100 * by_seed[s]["metrics"][m] for s in sorted(by_seed)]
                cells += [", ".join(f"{v:.2f}" for v in values), f"{sum(values) / len(values):.2f}"]
            epochs = ", ".join(str(by_seed[s]["best_epoch"]) for s in sorted(by_seed))
            rate = sum(r["examples_per_second"] for r in by_seed.values()) / len(by_seed)
            print(f"| {label} | " + " | ".join(cells) + f" | {epochs} | {rate:.1f} |")
        if reference not in runs:
            continue
        print()
        for label, by_seed in runs.items():
            if label == reference:
                continue
            common = sorted(set(by_seed) & set(runs[reference]))
            if not common:
                continue
            parts = []
            for m in (m for m in metrics if m in ("accuracy", "f1")):
                mean, low, high = paired_interval(m, [by_seed[s]["predictions"] for s in common],
                                                  [runs[reference][s]["predictions"] for s in common],
                                                  by_seed[common[0]]["labels"])
                parts.append(f"{m} {100 * mean:+.2f} [{100 * low:+.2f}, {100 * high:+.2f}]")
            ratio = (sum(by_seed[s]["examples_per_second"] for s in common)
                     / sum(runs[reference][s]["examples_per_second"] for s in common))
            print(f"{label} − {reference} over seeds {common}: " + "; ".join(parts)
                  + f" (paired bootstrap 95 % interval, {RESAMPLES} resamples of the dev examples); "
                  f"examples/s ratio {ratio:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--tasks", default="mrpc,rte")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--frameworks", default="mtl,trainer")
    parser.add_argument("--group-by-length", action="store_true", help="both frameworks: batches of similar lengths")
    parser.add_argument("--label", default=None, help="folder name for these runs (default: the framework)")
    parser.add_argument("--reference", default="trainer", help="the label the others are compared with")
    parser.add_argument("--report", action="store_true", help="only print the table of the runs in OUT")
    parser.add_argument("--max-steps", type=int, default=None, help="a quick check of the script, not a measurement")
    parser.add_argument("-o", "--output", default="parity-out")
    args = parser.parse_args()
    out, data_dir = Path(args.output), glue_dir(args.data_dir)
    tasks = [t for t in args.tasks.split(",") if t]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    frameworks = [f for f in args.frameworks.split(",") if f]
    if not args.report:
        import importlib.util

        if "trainer" in frameworks and importlib.util.find_spec("accelerate") is None:
            print('benchmarks/parity.py needs accelerate for transformers.Trainer: pip install -e ".[bench]"',
                  file=sys.stderr)
            return 2
        if not (Path(data_dir) / "RTE" / "train.tsv").exists():
            print(f"GLUE not found under {data_dir}; pass --data-dir", file=sys.stderr)
            return 2
        import torch

        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; settings {SETTINGS}", flush=True)
        for task in tasks:
            for framework in frameworks:
                label = args.label or framework
                for seed in seeds:
                    path = out / task / label / f"seed-{seed}.json"
                    if path.exists():
                        continue
                    started = time.perf_counter()
                    result = RUNNERS[framework](task, seed, data_dir, args.group_by_length, args.max_steps)
                    result.update(framework=framework, label=label, task=task, seed=seed,
                                  group_by_length=args.group_by_length)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(result))
                    print(f"{task} {label} seed {seed}: {result['metrics']} best epoch {result['best_epoch']}, "
                          f"{result['examples_per_second']:.1f} ex/s, {time.perf_counter() - started:.0f} s",
                          flush=True)
    labels = sorted({p.name for task in tasks for p in (out / task).glob("*") if p.is_dir()},
                    key=lambda label: (label != args.reference, label))
    report(out, tasks, seeds, labels, args.reference)
    return 0


if __name__ == "__main__":
    sys.exit(main())
