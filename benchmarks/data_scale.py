"""What a large auxiliary task costs a run: time to the first training step and peak memory (issue 28).

For each size N, a QNLI-like file of N question/sentence pairs (synthetic, deterministic: words drawn with a fixed
seed from the vocabulary of GLUE's QNLI dev file, QNLI's lengths) is written as TSV, then the whole command

    mtl run --target rte --aux qnli --data qnli.train=FILE --data-dir $MTL_GLUE_DIR --backbone minilm --max-steps 2

runs twice in a row as a subprocess (stopped once its first step is logged, unless ``--whole``), with one data
cache (``MTL_DATA_CACHE``, a fresh folder per size): the first run finds it cold, the second warm. Measured per
run: seconds until the run's ``metrics.jsonl`` has its first line (written after step 0, so: start-up, data, model
and one step), total seconds, the CPU seconds of each (user + system, from ``/proc`` and ``os.wait4``: what a
loaded machine does not inflate), and the child's peak RSS (``ru_maxrss`` of ``os.wait4``). Size 0 is RTE alone
(no auxiliary task): what every run pays anyway.

    MTL_GLUE_DIR=path/to/glue python benchmarks/data_scale.py [--sizes 0,5463,50000,400000]

``--mtl "python -m mtl.cli"`` names the command (e.g. another checkout's). The machine's load average is printed
with each figure: on a shared machine the times move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GLUE = Path(os.environ.get("MTL_GLUE_DIR", "glue_data"))  # the GLUE folder (RTE, QNLI): set MTL_GLUE_DIR


def vocabulary(glue: Path) -> list[str]:
    text = (glue / "QNLI" / "dev.tsv").read_text(encoding="utf-8")
    return sorted(set(re.findall(r"[A-Za-z]+", text)))


def write_pairs(path: Path, n: int, words: list[str], seed: int = 0) -> None:
    """N QNLI-like rows (index, question, sentence, label): a 6-16 word question and a 12-48 word sentence."""
    rng = random.Random(seed)
    labels = ("entailment", "not_entailment")
    with open(path, "w", encoding="utf-8") as out:
        out.write("index\tquestion\tsentence\tlabel\n")
        for i in range(n):
            question = " ".join(rng.choices(words, k=rng.randint(6, 16))) + "?"
            sentence = " ".join(rng.choices(words, k=rng.randint(12, 48))) + "."
            out.write(f"{i}\t{question.capitalize()}\t{sentence.capitalize()}\t{labels[rng.random() < 0.5]}\n")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(command: list[str], output: Path, env: dict[str, str], stop: bool) -> dict:
    """One run: seconds (wall and CPU) to the first metrics record, in all, peak RSS (MB), exit status."""
    metrics = output / "metrics.jsonl"
    first: list[float] = []
    first_cpu: list[float] = []
    start = time.perf_counter()
    log = open(output.with_suffix(".log"), "w")
    proc = subprocess.Popen(command + ["--output", str(output)], env=env, stdout=log, stderr=subprocess.STDOUT)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                if metrics.stat().st_size > 0:
                    first.append(time.perf_counter() - start)
                    first_cpu.append(cpu_seconds(proc.pid))
                    if stop:
                        proc.kill()
                    return
            except OSError:
                pass
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.perf_counter() - start
    done.set()
    watcher.join()
    log.close()
    proc.returncode = 0 if stop and first else os.waitstatus_to_exitcode(status)
    return {"first_step_s": round(first[0], 1) if first else None, "total_s": round(total, 1),
            "first_step_cpu_s": round(first_cpu[0], 1) if first_cpu else None,
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "rc": proc.returncode,
            "load": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0,5463,50000,400000", help="comma-separated pair counts (0: no aux)")
    parser.add_argument("--runs", type=int, default=2, help="runs per size, one after the other (cold, warm, ...)")
    parser.add_argument("--mtl", default=f"{shlex.quote(sys.executable)} -m mtl.cli", help="the mtl command")
    parser.add_argument("--whole", action="store_true",
                        help="let each run finish (training and evaluation); by default it is stopped (SIGKILL) "
                             "once its first step is logged, so that total and peak RSS cover start-up and step 0")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    args = parser.parse_args()
    if not (GLUE / "RTE" / "train.tsv").is_file() or not (GLUE / "QNLI" / "dev.tsv").is_file():
        print(f"skipped: no GLUE data (RTE/train.tsv, QNLI/dev.tsv) in {GLUE}; set MTL_GLUE_DIR")
        return
    tmp = Path(tempfile.mkdtemp(prefix="mtl-data-scale-"))
    words = vocabulary(GLUE)
    results = []
    print(f"{'pairs':>8} {'run':>4} {'first step s':>12} {'(CPU s)':>8} {'total s':>8} {'(CPU s)':>8} "
          f"{'peak RSS MB':>11} {'load':>5}", flush=True)
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            folder = tmp / f"n{n}"
            folder.mkdir()
            command = [*shlex.split(args.mtl), "run", "--target", "rte", "--data-dir", str(GLUE),
                       "--backbone", "minilm", "--max-steps", "2", "--keep", "none", "--seed", "0"]
            if n:
                data = folder / "qnli_train.tsv"
                write_pairs(data, n, words)
                command += ["--aux", "qnli", "--data", f"qnli.train={data}"]
            env = dict(os.environ, MTL_DATA_CACHE=str(folder / "cache"), HF_HUB_OFFLINE="1",
                       TOKENIZERS_PARALLELISM="false")
            for r in range(args.runs):
                result = {"pairs": n, "run": r + 1, **run_once(command, folder / f"run{r + 1}", env, not args.whole)}
                results.append(result)
                print(f"{n:>8} {r + 1:>4} {result['first_step_s']!s:>12} {result['first_step_cpu_s']!s:>8} "
                      f"{result['total_s']:>8} {result['cpu_s']:>8} {result['peak_rss_mb']:>11} {result['load']:>5.2f}"
                      + ("" if result["rc"] == 0 else f"  exit {result['rc']}: see {folder}/run{r + 1}.log"),
                      flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
