"""`mtl push RUN_OR_EXPORT --repo NAME`: offline it is one line and nothing else happens; with the Hub (here
huggingface_hub's create_repo/upload_folder replaced by recorders) the export and its card for the repository
are uploaded, a run exported first into a temporary folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import huggingface_hub
import pytest
from conftest import assert_one_line_error, invoke_cli
from huggingface_hub import ModelCard

from mtl.runs.config import RunConfig

DEMO = dict(target="demo-paraphrase", aux=["demo-similarity"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny finished run and its `mtl export` folder."""
    from mtl.training.trainer import Trainer

    root = tmp_path_factory.mktemp("push")
    Trainer(RunConfig(**DEMO, backbone="tiny", batch_size=8, max_length=32, max_steps=2, eval_limit=8,
                      options={"tiny": {"hidden_size": 32}}, output=str(root / "run"))).train()
    result = invoke_cli("export", str(root / "run"), "--output", str(root / "export"))
    assert result.exit_code == 0, result.output
    return root / "run", root / "export"


def leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("mtl-push-*")}


@pytest.fixture
def hub(monkeypatch):
    """The Hub, recorded: create_repo and upload_folder keep their arguments and a copy of the uploaded folder."""
    from mtl.data import hub as hub_check

    calls: dict = {"create": [], "upload": []}
    copies = Path(tempfile.mkdtemp(prefix="uploaded-"))

    def create_repo(repo_id, **kwargs):
        calls["create"].append((repo_id, kwargs))
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(**kwargs):
        copy = copies / str(len(calls["upload"]))
        shutil.copytree(kwargs["folder_path"], copy)
        calls["upload"].append((kwargs, copy))
        return huggingface_hub.CommitInfo(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc",
                                          commit_message="m", commit_description="", oid="abc")

    monkeypatch.setattr(hub_check, "unavailable", lambda: None)
    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)
    yield calls
    shutil.rmtree(copies, ignore_errors=True)


@pytest.fixture
def no_upload(monkeypatch):
    """Any call to the Hub fails the test; so does loading a run (nothing may be exported)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the Hub was called")

    def no_load(*args, **kwargs):
        raise AssertionError("the run was loaded")

    monkeypatch.setattr(huggingface_hub, "create_repo", refuse)
    monkeypatch.setattr(huggingface_hub, "upload_folder", refuse)
    monkeypatch.setattr("mtl.runs.restore.load_run", no_load)


@pytest.mark.parametrize("which", ["run", "export"])
def test_offline_is_one_line_and_nothing_else_happens(run, which, no_upload, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = run[0] if which == "run" else run[1]
    before, files = leftovers(), sorted(p.name for p in folder.rglob("*"))
    result = invoke_cli("push", str(folder), "--repo", "someone/model")
    assert_one_line_error(result, "the Hugging Face Hub cannot be reached", "HF_HUB_OFFLINE is set",
                          "nothing was exported or uploaded")
    assert leftovers() == before and sorted(p.name for p in folder.rglob("*")) == files


def test_no_network_is_the_same_one_line(run, no_upload, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy",
                "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens, refused at once
    result = invoke_cli("push", str(run[1]), "--repo", "someone/model")
    assert_one_line_error(result, "the Hugging Face Hub cannot be reached (127.0.0.1:", "nothing was exported")


def test_a_folder_that_is_neither_a_run_nor_an_export(tmp_path, no_upload):
    (tmp_path / "notes.txt").write_text("hello")
    result = invoke_cli("push", str(tmp_path), "--repo", "someone/model")
    assert_one_line_error(result, "is neither a run folder (no config.json) nor an exported model (no mtl_export.json)")
    result = invoke_cli("push", str(tmp_path / "missing"), "--repo", "someone/model")
    assert_one_line_error(result, "no such folder")


def test_a_bad_repository_name(run, no_upload):
    result = invoke_cli("push", str(run[1]), "--repo", "a/b/c")
    assert_one_line_error(result, "--repo 'a/b/c': not a Hub repository name")


def test_pushing_a_run_uploads_its_export_with_a_card_for_the_repository(run, hub):
    folder, _ = run
    before = leftovers()
    result = invoke_cli("push", str(folder), "--repo", "someone/rte-model", "--private", "--token", "hf_xyz")
    assert result.exit_code == 0, result.output
    assert "Pushed" in result.stdout and "https://huggingface.co/someone/rte-model" in result.stdout
    ((repo, create),) = hub["create"]
    assert repo == "someone/rte-model" and create["private"] is True and create["token"] == "hf_xyz"
    ((upload, copy),) = hub["upload"]
    assert upload["repo_id"] == "someone/rte-model" and upload["token"] == "hf_xyz"
    assert {"README.md", "config.json", "model.safetensors", "mtl_export.json", "tokenizer.json"} <= \
        {p.name for p in copy.iterdir()}
    parsed = ModelCard.load(copy / "README.md")
    assert parsed.data.model_name == "someone/rte-model"
    assert 'from_pretrained("someone/rte-model")' in parsed.text
    metrics = json.loads((folder / "eval.json").read_text())["demo-paraphrase"]["dev"]
    assert {r.metric_name: r.metric_value for r in parsed.data.eval_results} == metrics
    assert leftovers() == before  # the temporary export is gone


def test_pushing_an_export_rewrites_the_card_of_the_copy_only(run, hub):
    _, exported = run
    original = (exported / "README.md").read_text()
    result = invoke_cli("push", str(exported), "--repo", "someone/other")
    assert result.exit_code == 0, result.output
    ((upload, copy),) = hub["upload"]
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in exported.iterdir())
    assert ModelCard.load(copy / "README.md").data.model_name == "someone/other"
    assert (exported / "README.md").read_text() == original  # never written through a hard link
    assert (copy / "model.safetensors").read_bytes() == (exported / "model.safetensors").read_bytes()


def test_the_uploaded_manifest_names_the_source_run_without_its_local_path(run, hub):
    folder, exported = run
    original = (exported / "mtl_export.json").read_text()
    assert json.loads(original)["source"]["run"] == str(folder.resolve())  # the local export keeps where it came from
    for pushed in (folder, exported):
        assert invoke_cli("push", str(pushed), "--repo", "someone/rte-model").exit_code == 0
    for _, copy in hub["upload"]:
        text = (copy / "mtl_export.json").read_text()
        assert json.loads(text)["source"]["run"] == folder.name
        assert str(folder.parent.resolve()) not in text
    assert (exported / "mtl_export.json").read_text() == original  # never written through a hard link


def test_a_refused_upload_is_one_line_saying_how_to_log_in(run, hub, monkeypatch):
    class Refused(Exception):
        response = type("Response", (), {"status_code": 401})()

    def create_repo(repo_id, **kwargs):
        raise Refused("401 Client Error: Unauthorized for url: https://huggingface.co/api/repos/create")

    monkeypatch.setattr(huggingface_hub, "create_repo", create_repo)
    result = invoke_cli("push", str(run[1]), "--repo", "someone/model")
    assert_one_line_error(result, "the Hub refused to create or write 'someone/model' (401)", "hf auth login",
                          "--token")
    assert hub["upload"] == []
