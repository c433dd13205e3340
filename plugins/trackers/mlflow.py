"""Tracker ``mlflow``: an MLflow run with the run's options as parameters and every scalar as a metric.

The tracking store is ``MLFLOW_TRACKING_URI`` when it is set, else a file store in the run folder
(``file:RUN/mlruns``). MLflow 3 keeps its file store in maintenance mode and refuses it unless
``MLFLOW_ALLOW_FILE_STORE=true``: this tracker allows it for the store it chose itself; browse it with
``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri RUN/mlruns``. The experiment is ``experiment``, else
``MLFLOW_EXPERIMENT_NAME``, else ``mtl``. Works with ``mlflow-skinny`` (no server, no SQL) as well as ``mlflow``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mtl import Tracker, hookimpl

STATUS = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
BATCH = 1000  # MLflow's limit of metrics per log_batch call


class MLflow(Tracker):
    def __init__(self, experiment: str = "", tracking_uri: str = ""):
        """``experiment``: the MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else mtl); ``tracking_uri``:
        the tracking store (default: MLFLOW_TRACKING_URI, else file:RUN/mlruns)."""
        self.require("mlflow", "mlflow", tracker="mlflow")
        self.experiment, self.tracking_uri = experiment, tracking_uri
        self.client = self.run_id = None

    def start(self, run_name, config, output_dir):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        local = (Path(output_dir) / "mlruns").resolve().as_uri()
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or local
        allow = "MLFLOW_ALLOW_FILE_STORE"
        chosen_file_store = not (self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
        before = os.environ.get(allow)
        if chosen_file_store and before is None:  # the store is built (and cached) now, for this URI only
            os.environ[allow] = "true"
        try:
            self.client = MlflowClient(tracking_uri=uri)
        finally:
            if chosen_file_store and before is None:
                os.environ.pop(allow, None)
        name = self.experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "mtl"
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment is not None else self.client.create_experiment(name)
        run = self.client.create_run(experiment_id, run_name=run_name, tags={"mtl.output": str(output_dir)})
        self.run_id = run.info.run_id
        params = [Param(key, str(value)) for key, value in self.flatten(config).items() if key]
        for i in range(0, len(params), 100):  # MLflow's limit of parameters per call
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def log(self, step, scalars):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for key, value in scalars.items()]
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH])

    def finish(self, status):
        if self.client is not None and self.run_id is not None:
            self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
            self.run_id = None


@hookimpl
def register_trackers(register):
    register("mlflow", MLflow, description="an MLflow run (MLFLOW_TRACKING_URI, else a file store in RUN/mlruns)")
