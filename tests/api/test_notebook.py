"""examples/quickstart.ipynb executes top to bottom on a fresh kernel (nbclient), and shows what it says it shows."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_the_committed_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def _result(notebook, tag: str):
    """The value of the cell tagged ``tag``: its last expression's ``text/plain``, read as a Python literal."""
    cell = next(cell for cell in notebook.cells if tag in cell.metadata.get("tags", []))
    shown = [out for out in cell.outputs if out.output_type == "execute_result"]
    assert shown, cell.outputs
    return ast.literal_eval(shown[-1]["data"]["text/plain"])


@pytest.mark.slow
def test_the_quickstart_notebook_runs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # the kernel starts in tmp_path: the notebook's runs/ and bench/ folders are written there
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()

    metrics = _result(notebook, "metrics")
    assert set(metrics) == {"demo-paraphrase", "demo-similarity", "demo-sentiment"}
    selection, primary = _result(notebook, "primary")
    assert selection == "demo-paraphrase.dev.f1" and 0 <= primary <= 1
    evaluated = json.loads((tmp_path / "runs" / "quickstart" / "eval.json").read_text())
    assert primary == evaluated["demo-paraphrase"]["dev"]["f1"]
    assert _result(notebook, "strategies") == ["single", "mamt"]
    bench = json.loads((tmp_path / "bench" / "quickstart" / "bench.json").read_text())
    assert [row["strategy"] for row in bench["table"]["rows"]] == ["single", "mamt"]
    labels = _result(notebook, "labels")
    assert len(labels) == 2 and set(labels) <= {"paraphrase", "not_paraphrase"}
    assert _result(notebook, "same") is True
