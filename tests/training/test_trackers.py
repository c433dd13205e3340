"""Experiment trackers (`--report-to`, plugin kind `tracker`): one tiny run reports to TensorBoard, MLflow, W&B
(offline), trackio (local) and a third-party tracker at once; each one's own files are read back with the
tracker's own reader and must hold what metrics.jsonl holds. Errors (an unknown tracker, a missing package) are
one line and leave no run folder."""

from __future__ import annotations

import glob
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_RUN, assert_one_line_error, invoke_cli

import mtl
from mtl import Tracker, hookimpl
from mtl.contract import loader
from mtl.errors import MtlError, OptionError, UnknownNameError
from mtl.runs.config import RunConfig, parse_report_to
from mtl.training import tracking

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity", "demo-sentiment"])
BUILTIN = ["tensorboard", "mlflow", "wandb", "trackio"]
PACKAGES = {"tensorboard": ("tensorboardX", "torch.utils.tensorboard"), "mlflow": ("mlflow",), "wandb": ("wandb",),
            "trackio": ("trackio",)}
TRACKIO_PROJECT = "mtl-tests"


class Recorder(Tracker):
    """A third-party tracker: records every call."""

    made: list[Recorder] = []

    def __init__(self, label: str = ""):
        self.label, self.calls = label, []
        Recorder.made.append(self)

    def start(self, run_name, config, output_dir):
        self.calls.append(("start", run_name, config, output_dir))

    def log(self, step, scalars):
        self.calls.append(("log", step, dict(scalars)))

    def finish(self, status):
        self.calls.append(("finish", status))


class Broken(Tracker):
    """A tracker whose service fails on the first log: it is dropped, the run and the other trackers go on."""

    made: list[Broken] = []

    def __init__(self):
        self.calls = []
        Broken.made.append(self)

    def log(self, step, scalars):
        self.calls.append("log")
        raise ConnectionError("the service is down")

    def finish(self, status):
        self.calls.append("finish")


class ThirdParty:
    @hookimpl
    def register_trackers(self, register):
        register("recorder", Recorder, description="records every call (test)")
        register("broken", Broken, description="fails on log (test)")


@pytest.fixture
def third_party(register_plugin):
    Recorder.made.clear()
    Broken.made.clear()
    return register_plugin(ThirdParty())


def scalar_records(run: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, numbers) of every metrics.jsonl record, as a tracker receives them."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    out = []
    for record in records:
        numbers = {k: float(v) for k, v in record.items()
                   if k not in ("step", "tasks") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        out.append((record["step"], numbers))
    return out


def by_step(records) -> dict[tuple[int, str], float]:
    """{(step, name): value} of (step, numbers) pairs; a name logged twice at one step must have one value."""
    out: dict[tuple[int, str], float] = {}
    for step, numbers in records:
        for key, value in numbers.items():
            assert out.setdefault((int(step), key), float(value)) == pytest.approx(float(value), rel=1e-6)
    return out


def assert_same_values(written, records) -> None:
    """The values a tracker wrote are metrics.jsonl's, by step and name (float32 files: to 1e-6)."""
    got, expected = by_step(written), by_step(records)
    assert expected and sorted(got) == sorted(expected)
    assert got == {k: pytest.approx(v, rel=1e-6, abs=1e-12) for k, v in expected.items()}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One tiny run (3 steps, logged every step, evaluated at its end) reporting to every built-in tracker and to
    the third-party recorder and broken trackers: (run folder, config.json record, the recorder, the broken one)."""
    root = tmp_path_factory.mktemp("tracked")
    plugin = ThirdParty()
    loader.load_plugins()
    loader.pm.register(plugin)
    Recorder.made.clear()
    Broken.made.clear()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("WANDB_MODE", "offline")
            mp.setenv("WANDB_SILENT", "true")
            mp.setenv("TRACKIO_DIR", str(root / "trackio"))
            for var in ("WANDB_DIR", "WANDB_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME",
                        "MLFLOW_ALLOW_FILE_STORE"):
                mp.delenv(var, raising=False)
            from mtl.training.trainer import Trainer

            config = RunConfig(**DEMO, backbone="tiny", batch_size=8, max_length=32, max_steps=3, eval_limit=8,
                               log_every=1, seed=3, output=str(root / "run"),
                               options={"tiny": {"hidden_size": 32}, "recorder": {"label": "abc"},
                                        "trackio": {"project": TRACKIO_PROJECT}},
                               report_to="tensorboard,mlflow,wandb,trackio,broken,recorder")
            Trainer(config).train()
    finally:
        loader.pm.unregister(plugin)  # the function-scoped tests register their own copy
        if "wandb" in sys.modules:
            sys.modules["wandb"].teardown()
    run = root / "run"
    record = json.loads((run / "config.json").read_text())
    return run, record, Recorder.made[-1], Broken.made[-1]


# ---------------------------------------------------------------- what each tracker wrote


@pytest.mark.slow
def test_the_run_records_its_trackers(tracked):
    run, record, _, _ = tracked
    assert record["report_to"] == ["tensorboard", "mlflow", "wandb", "trackio", "broken", "recorder"]
    for name in BUILTIN:
        assert record["plugins"][f"tracker.{name}"]["package"] == "mtl"
    assert len(scalar_records(run)) == 4  # steps 0, 1, 2 and the evaluation at step 2


@pytest.mark.slow
def test_tensorboard_event_files_hold_every_scalar(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    run, record, _, _ = tracked
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    written = [(e.step, {tag: e.value}) for tag in events.Tags()["scalars"] for e in events.Scalars(tag)]
    assert_same_values(written, scalar_records(run))
    names = {key for _, numbers in written for key in numbers}
    assert {"lr", "p.demo-sentiment", "epoch", "eval.demo-paraphrase.dev.f1"} <= names
    assert any(n.startswith("loss.") for n in names) and any(n.startswith("weight.") for n in names)
    # the run's options are the HParams session's hyper-parameters
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["lr"].number_value == pytest.approx(record["lr"])
    assert hparams["weighting"].string_value == "uniform"
    assert hparams["options.tiny.hidden_size"].number_value == 32


@pytest.mark.slow
def test_mlflow_file_store_has_the_runs_metrics_and_params(tracked, monkeypatch):
    from mlflow.tracking import MlflowClient

    run, record, _, _ = tracked
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store in maintenance mode
    client = MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("mtl")
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == run.name and found.info.status == "FINISHED"
    params = found.data.params
    assert params["lr"] == str(record["lr"]) and params["target"] == "demo-paraphrase"
    assert params["aux"] == "demo-similarity,demo-sentiment" and params["options.recorder.label"] == "abc"
    logged = [(m.step, {key: m.value}) for key in found.data.metrics
              for m in client.get_metric_history(found.info.run_id, key)]
    assert_same_values(logged, scalar_records(run))


def read_wandb(path: str) -> list:
    """The records of a W&B transaction log (run-ID.wandb): a 7-byte header, then LevelDB-log chunks."""
    from wandb.proto import wandb_internal_pb2

    raw = Path(path).read_bytes()
    assert raw[:4] == b":W&B"
    pos, pending, records, block = 7, b"", [], 32768
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0 and length == 0:
            break
        pending += raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.mark.slow
def test_wandb_offline_run_holds_the_history_and_config(tracked):
    run, record, _, _ = tracked
    (path,) = glob.glob(str(run / "wandb" / "offline-run-*" / "run-*.wandb"))
    records = read_wandb(path)
    history: dict[int, dict[str, float]] = {}
    config, names, exit_codes = {}, [], []
    for r in records:
        kind = r.WhichOneof("record_type")
        if kind == "history":
            row = {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            history.setdefault(r.history.step.num, {}).update({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "run":
            names.append(r.run.display_name)
            config.update({item.key or ".".join(item.nested_key): json.loads(item.value_json)
                           for item in r.run.config.update})
        elif kind == "config":
            config.update({item.key or ".".join(item.nested_key): json.loads(item.value_json)
                           for item in r.config.update})
        elif kind == "exit":
            exit_codes.append(r.exit.exit_code)
    assert_same_values(history.items(), scalar_records(run))
    assert names == [run.name] and exit_codes == [0]
    assert config["lr"] == record["lr"] and config["aux"] == record["aux"] and config["seed"] == 3


@pytest.mark.slow
def test_trackio_local_run_holds_the_logs_and_config(tracked):
    from trackio.sqlite_storage import SQLiteStorage
    from trackio.utils import TRACKIO_DIR

    run, record, _, _ = tracked
    assert Path(TRACKIO_DIR) == run.parent / "trackio"  # trackio read TRACKIO_DIR when first imported: in the run
    assert (Path(TRACKIO_DIR) / f"{TRACKIO_PROJECT}.db").is_file()
    logs = SQLiteStorage.get_logs(TRACKIO_PROJECT, run.name)
    logged = [(entry["step"], {k: v for k, v in entry.items() if k not in ("step", "timestamp")}) for entry in logs]
    assert_same_values(logged, scalar_records(run))
    config = SQLiteStorage.get_run_config(TRACKIO_PROJECT, run.name)
    assert config["lr"] == record["lr"] and config["target"] == "demo-paraphrase"


@pytest.mark.slow
def test_a_third_party_tracker_receives_every_record(tracked):
    run, record, recorder, broken = tracked
    assert recorder.label == "abc"  # --set recorder.label=abc reached it
    start, *logs, finish = recorder.calls
    assert start[0] == "start" and start[1] == run.name and Path(start[3]) == run
    assert start[2] == {k: record[k] for k in start[2]} and start[2]["report_to"] == record["report_to"]
    assert [(step, numbers) for _, step, numbers in logs] == scalar_records(run)
    assert finish == ("finish", "finished")
    assert broken.calls == ["log"]  # dropped after its failure: no more logs, no finish


# ---------------------------------------------------------------- errors and plumbing


def test_unknown_tracker_is_a_one_line_error_and_no_run_folder(tmp_path):
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "--report-to", "tensorbord", "-o", str(out))
    assert_one_line_error(result, "unknown tracker 'tensorbord'", "Did you mean 'tensorboard'", "none")
    assert not out.exists()


@pytest.mark.parametrize("name", BUILTIN)
def test_a_missing_package_is_a_one_line_error_naming_it(name, tmp_path, monkeypatch):
    for module in PACKAGES[name]:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails as if it were not installed
    out = tmp_path / "run"
    result = invoke_cli("run", *TINY_RUN, "--report-to", f"{name}", "-o", str(out))
    assert_one_line_error(result, f"tracker '{name}'", f"pip install {PACKAGES[name][0]}")
    assert not out.exists()


def test_report_to_is_spelled_as_transformers_spells_it():
    assert parse_report_to("tensorboard, mlflow") == ["tensorboard", "mlflow"]
    assert parse_report_to(["wandb"]) == ["wandb"]
    assert parse_report_to("none") == [] and parse_report_to(None) == [] and parse_report_to("") == []
    assert parse_report_to("all") == ["all"]
    with pytest.raises(OptionError, match="'none' cannot be combined"):
        parse_report_to("none,wandb")
    with pytest.raises(OptionError, match="'all' cannot be combined"):
        parse_report_to("all,wandb")
    assert RunConfig().report_to == [] and RunConfig(report_to="mlflow").validate().report_to == ["mlflow"]


def test_all_means_every_tracker_whose_package_is_installed(monkeypatch, third_party):
    monkeypatch.setitem(sys.modules, "wandb", None)
    names = tracking.resolve(["all"])
    assert "wandb" not in names and {"tensorboard", "mlflow", "trackio", "recorder"} <= set(names)
    with pytest.raises(UnknownNameError, match="unknown tracker 'mlfow'.*Did you mean 'mlflow'"):
        tracking.resolve(["mlfow"])


def test_tracker_options_are_routed_only_to_the_runs_trackers():
    config = RunConfig(**DEMO, report_to=["wandb"], options={"wandb": {"project": "p"}})
    assert config.plugin_options()[("tracker", "wandb")] == {"project": "p"}
    with pytest.raises(OptionError, match="'mlflow': not a plugin of this run.*tracker 'wandb'"):
        RunConfig(**DEMO, report_to=["wandb"], options={"mlflow": {"experiment": "e"}}).plugin_options()


def test_only_rank_0_starts_logs_and_finishes(third_party):
    other = tracking.create(["recorder"], {"recorder": {"label": "x"}}, enabled=False)  # rank 1..N-1
    other.start("run", {}, Path("."))
    other.log(0, {"loss.a": 1.0})
    other.finish()
    assert Recorder.made[-1].calls == [] and Recorder.made[-1].label == "x"  # built (checked), never used
    main = tracking.create(["recorder"], {}, enabled=True)
    main.start("run", {}, Path("."))
    main.log(0, {"loss.a": 1.0, "tasks": ["a"], "step": 0, "nonfinite": math.nan})
    main.finish(KeyboardInterrupt())
    assert Recorder.made[-1].calls == [("start", "run", {}, Path(".")), ("log", 0, {"loss.a": 1.0}),
                                       ("finish", "interrupted")]


def test_a_failed_run_finishes_its_trackers_as_failed(third_party, tmp_path, monkeypatch):
    from mtl.training.trainer import Trainer

    def fail(self):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(Trainer, "evaluate", fail)
    config = RunConfig(**DEMO, backbone="tiny", batch_size=8, max_length=32, max_steps=1, eval_limit=8,
                       options={"tiny": {"hidden_size": 32}}, report_to=["recorder"], output=str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="evaluation broke"):
        Trainer(config).train()
    calls = Recorder.made[-1].calls
    assert [c[0] for c in calls] == ["start", "log", "finish"] and calls[-1] == ("finish", "failed")


def test_a_tracker_that_cannot_start_stops_the_run_before_its_first_step(third_party, tmp_path, monkeypatch):
    from mtl.training.trainer import Trainer

    def refuse(self, run_name, config, output_dir):
        raise PermissionError("no write access to the store")

    monkeypatch.setattr(Broken, "start", refuse)
    config = RunConfig(**DEMO, backbone="tiny", batch_size=8, max_length=32, max_steps=1, eval_limit=8,
                       options={"tiny": {"hidden_size": 32}}, report_to=["recorder", "broken"],
                       output=str(tmp_path / "run"))
    with pytest.raises(MtlError, match="tracker 'broken' could not start: PermissionError: no write access"):
        Trainer(config).train()
    assert Recorder.made[-1].calls[0][0] == "start" and Recorder.made[-1].calls[-1] == ("finish", "failed")
    assert not (tmp_path / "run").exists()  # nothing trained: the new run folder is removed


def test_tensorboard_falls_back_to_torch_utils_tensorboard(tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    tracker = mtl.create("tracker", "tensorboard", log_dir=str(tmp_path / "tb"))
    assert tracker.writer_class.__module__.startswith("torch.utils.tensorboard")
    tracker.start("r", {"lr": 0.1}, tmp_path)
    tracker.log(5, {"loss.a": 0.25})
    tracker.finish("finished")
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss.a")] == [(5, 0.25)]


def test_mlflow_uses_mlflow_tracking_uri_and_experiment(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = (tmp_path / "elsewhere").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    tracker = mtl.create("tracker", "mlflow", experiment="study")
    tracker.start("r", {"lr": 0.1}, tmp_path / "run")
    tracker.log(1, {"loss.a": 0.5})
    tracker.finish("interrupted")
    (found,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("study").experiment_id])
    assert found.info.status == "KILLED"
    assert found.data.metrics == {"loss.a": 0.5} and found.data.params == {"lr": "0.1"}
    assert not (tmp_path / "run" / "mlruns").exists()


def test_listing_trackers_imports_no_tracker_package():
    code = ("import sys, mtl\nprint(mtl.available('tracker'))\n"
            "print([m for m in ('torch', 'tensorboardX', 'tensorboard', 'mlflow', 'wandb', 'trackio') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed, imported = out.stdout.splitlines()
    assert set(BUILTIN) <= set(eval(listed)) and imported == "[]"


def test_mtl_plugins_lists_the_tracker_kind():
    result = invoke_cli("plugins", "--kind", "tracker", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["plugins"]
    assert {r["name"] for r in rows} == set(BUILTIN) and {r["kind"] for r in rows} == {"tracker"}
    shown = invoke_cli("plugins", "show", "wandb", "--json")
    assert {o["name"] for o in json.loads(shown.stdout)[0]["options"]} == {"project", "entity", "group", "tags"}
