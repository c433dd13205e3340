"""The hooks a plugin implements (pluggy project name ``"mtl"``).

Each hook receives a ``register(name, factory, *, description="", aliases=())`` callback. ``factory`` is a
class or callable whose typed keyword arguments are the plugin's options, or a ``"module:attr"`` string that
is imported only when the plugin is used (so listing plugins stays fast).
"""

import pluggy

hookspec = pluggy.HookspecMarker("mtl")
hookimpl = pluggy.HookimplMarker("mtl")


@hookspec
def register_weightings(register):
    """Register weighting strategies (subclasses of :class:`mtl.Weighting`)."""


@hookspec
def register_samplers(register):
    """Register task samplers (subclasses of :class:`mtl.Sampler`)."""


@hookspec
def register_backbones(register):
    """Register backbones (factories returning a :class:`mtl.backbone.Backbone`)."""


@hookspec
def register_tasks(register):
    """Register tasks (subclasses of :class:`mtl.Task`)."""


@hookspec
def register_regularizers(register):
    """Register regularizers (subclasses of :class:`mtl.Regularizer`): a term added to each step's loss from the
    model and the step's batches (SMART); chosen with ``--regularizer NAME``."""


@hookspec
def register_trackers(register):
    """Register experiment trackers (subclasses of :class:`mtl.Tracker`): where a run's metrics and options are
    sent besides ``metrics.jsonl`` (TensorBoard, MLflow, W&B, trackio); chosen with ``--report-to NAME[,NAME]``."""


@hookspec
def register_launchers(register):
    """Register launchers (subclasses of :class:`mtl.Launcher`): where the runs of ``mtl bench`` execute (this
    machine, SLURM through submitit); chosen with ``mtl bench --launcher NAME``."""


@hookspec
def register_figures(register):
    """Register figures drawn by ``mtl plot`` from a run's records: ``register(name, draw, *, description="",
    aliases=())``, ``name`` the file stem (``"similarity"`` writes ``similarity.png``). ``draw(run)`` receives a
    read-only :class:`mtl.study.figures.RunRecords` and returns a matplotlib ``Figure`` made with
    ``run.figure(...)``, or a string saying why there is nothing to draw (e.g. "no mamt.similarity records")."""


@hookspec
def register_callbacks(register):
    """Register training callbacks (subclasses of :class:`mtl.Callback`): code run at a run's events (train
    begin/end, step begin/end, evaluation, save, log); chosen with ``RunConfig.callbacks`` (``--callback NAME``)."""
