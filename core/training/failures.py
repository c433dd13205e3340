"""What a run that stops says: a signal, a storage failure or a user mistake become one message saying what is kept
and how to go on (``--resume``, ``mtl export``, ``--overwrite``); a run that failed before anything was kept leaves
no folder behind."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from mtl.errors import Interrupted, MtlError, Stopped, StorageError, TrainingError
from mtl.runs import folder as run_files
from mtl.runs import signals


@contextlib.contextmanager
def explained(t, created: bool) -> Iterator[None]:
    """Around the training of ``t`` (a :class:`mtl.training.trainer.Trainer`) whose folder this process ``created``."""
    try:
        yield
    except TrainingError:
        raise  # stopped on purpose: the run folder and its checkpoints are kept for --resume
    except (KeyboardInterrupt, Stopped) as exc:  # SIGINT / SIGTERM: nothing half-written (atomic writes)
        signum = signals.stopping(exc)
        if t.folder.finished():  # stopped while writing model/ or freeing the checkpoints: nothing to resume
            where = (f"the run had finished ({run_files.EVAL} and {run_files.SUMMARY} are written)"
                     + ("" if t.folder.model_dir.is_dir() else
                        f"; {run_files.MODEL}/ was not written: `mtl export {t.output}` writes it"))
        elif t.last_checkpoint is not None:
            where = resume_hint(t)
        else:
            where = "no checkpoint was written yet: start the run again (same options, --overwrite)"
        raise Interrupted(f"stopped by {signals.name(signum)}; {where}", signum) from None
    except StorageError as exc:  # the folder could not be written: keep what is there, say how to go on
        if created and t.last_checkpoint is None:
            shutil.rmtree(t.output, ignore_errors=True)
            raise StorageError(f"{exc}; nothing was trained yet and {t.output} was removed: "
                               f"remove the cause and start the run again") from None
        where = (f"the last checkpoint {t.last_checkpoint} is intact: remove the cause and continue with "
                 f"`{t.RESUME_COMMAND} {t.output}`" if t.last_checkpoint is not None else
                 "no checkpoint was written yet: remove the cause and start again with --overwrite")
        raise StorageError(f"{exc}; {where}") from None
    except MtlError:
        if created and t.last_checkpoint is None:  # a run that failed before anything was kept (a user
            shutil.rmtree(t.output, ignore_errors=True)  # mistake) leaves nothing half-written behind
        raise


def resume_hint(t) -> str:
    """How a stopped run with a checkpoint goes on, for its message."""
    return f"the last checkpoint {t.last_checkpoint} is intact: continue with `{t.RESUME_COMMAND} {t.output}`"
