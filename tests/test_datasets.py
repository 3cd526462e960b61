"""Tests of sicore.datasets.download_dataset against a datalad dataset made in the test (no network)."""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import pytest

from sicore import datasets
from sicore.datasets import download_dataset, get_global_dataset_folder, set_global_dataset_folder

HAVE_ANNEX = shutil.which("git") is not None and shutil.which("git-annex") is not None
try:
    import datalad.api as dl
except ImportError:
    dl = None

needs_datalad = pytest.mark.skipif(
    dl is None or not HAVE_ANNEX,
    reason="needs the optional datalad package (pip install datalad) and git-annex on the PATH "
    "(apt-get install git-annex)",
)


@pytest.fixture
def git_identity(monkeypatch):
    # datalad commits; do not depend on the machine's git configuration
    for var, value in (("GIT_AUTHOR_NAME", "sicore tests"), ("GIT_AUTHOR_EMAIL", "tests@sicore.invalid"),
                       ("GIT_COMMITTER_NAME", "sicore tests"), ("GIT_COMMITTER_EMAIL", "tests@sicore.invalid")):
        monkeypatch.setenv(var, value)


@pytest.fixture
def source_dataset(tmp_path, git_identity):
    """A datalad dataset with an annexed file and a folder of two files."""
    path = tmp_path / "ephy_source"
    ds = dl.create(path=str(path), result_renderer="disabled")
    (path / "mearec").mkdir()
    (path / "mearec" / "rec.h5").write_bytes(b"version-1" * 1000)
    (path / "spikeglx" / "multi").mkdir(parents=True)
    (path / "spikeglx" / "multi" / "a.bin").write_bytes(b"a" * 500)
    (path / "spikeglx" / "multi" / "b.meta").write_bytes(b"b" * 50)
    ds.save(message="add data", result_renderer="disabled")
    assert (path / "mearec" / "rec.h5").is_symlink()  # annexed, not in git
    return ds, path


def _replace_file(ds, path: Path, relative: str, content: bytes):
    ds.unlock(relative, result_renderer="disabled")
    (path / relative).write_bytes(content)
    ds.save(message="new version", result_renderer="disabled")


@needs_datalad
def test_download_file_then_use_the_cache(source_dataset, tmp_path, monkeypatch):
    _, source = source_dataset
    local_folder = tmp_path / "cache" / "ephy"
    local_path = download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=local_folder)
    assert local_path == local_folder / "mearec" / "rec.h5"
    assert local_path.read_bytes() == b"version-1" * 1000
    # only what was asked for was downloaded
    assert not (local_folder / "spikeglx" / "multi" / "a.bin").exists()

    # second call: neither a clone nor a download
    def fail(*args, **kwargs):
        raise AssertionError("download_dataset contacted the repository although the file is cached")

    monkeypatch.setattr(dl, "install", fail)
    monkeypatch.setattr(dl.Dataset, "get", fail)
    again = download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=local_folder)
    assert again == local_path and again.read_bytes() == b"version-1" * 1000


@needs_datalad
def test_download_folder_with_leading_slash(source_dataset, tmp_path):
    _, source = source_dataset
    local_path = download_dataset(repo=str(source), remote_path="/spikeglx/multi", local_folder=tmp_path / "c")
    assert local_path == tmp_path / "c" / "spikeglx" / "multi"
    assert (local_path / "a.bin").read_bytes() == b"a" * 500
    assert (local_path / "b.meta").read_bytes() == b"b" * 50


@needs_datalad
def test_update_if_exists_pulls_the_new_version(source_dataset, tmp_path):
    ds, source = source_dataset
    local_folder = tmp_path / "c"
    download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=local_folder)
    _replace_file(ds, source, "mearec/rec.h5", b"version-2" * 1000)
    cached = download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=local_folder)
    assert cached.read_bytes() == b"version-1" * 1000
    updated = download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=local_folder,
                               update_if_exists=True)
    assert updated.read_bytes() == b"version-2" * 1000


@needs_datalad
def test_unlock_gives_a_regular_writable_file(source_dataset, tmp_path):
    _, source = source_dataset
    local_path = download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=tmp_path / "c",
                                  unlock=True)
    assert not local_path.is_symlink() and os.access(local_path, os.W_OK)
    assert local_path.read_bytes() == b"version-1" * 1000


@needs_datalad
def test_default_local_folder_is_under_the_global_dataset_folder(source_dataset, tmp_path, monkeypatch):
    _, source = source_dataset
    monkeypatch.setenv("SICORE_DATASETS_FOLDER", str(tmp_path / "from_env"))
    assert get_global_dataset_folder() == tmp_path / "from_env"
    local_path = download_dataset(repo=str(source), remote_path="mearec/rec.h5")
    assert local_path == tmp_path / "from_env" / "ephy_source" / "mearec" / "rec.h5"
    assert local_path.read_bytes() == b"version-1" * 1000
    set_global_dataset_folder(tmp_path / "set")
    try:
        assert get_global_dataset_folder() == tmp_path / "set"
    finally:
        set_global_dataset_folder(None)


@needs_datalad
def test_missing_remote_path_and_bad_local_folder(source_dataset, tmp_path):
    _, source = source_dataset
    with pytest.raises(FileNotFoundError, match="not_there.h5"):
        download_dataset(repo=str(source), remote_path="mearec/not_there.h5", local_folder=tmp_path / "c")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="local_folder"):
        download_dataset(repo=str(source), remote_path="mearec/rec.h5", local_folder=occupied)
    with pytest.raises(RuntimeError, match="cloning"):
        download_dataset(repo=str(tmp_path / "no_such_repo"), remote_path="x", local_folder=tmp_path / "d")


@pytest.mark.parametrize("remote_path", ["../secret", "/", "a/../../b", 3])
def test_bad_remote_path(remote_path, tmp_path):
    with pytest.raises(ValueError, match="remote_path"):
        download_dataset(repo=str(tmp_path), remote_path=remote_path, local_folder=tmp_path / "c")


def test_missing_datalad_is_a_clear_import_error(monkeypatch, tmp_path):
    # None in sys.modules makes the import fail as if datalad were not installed
    monkeypatch.setitem(sys.modules, "datalad", None)
    monkeypatch.setitem(sys.modules, "datalad.api", None)
    with pytest.raises(ImportError, match="pip install datalad"):
        download_dataset(repo=str(tmp_path), remote_path="x", local_folder=tmp_path / "c")


def test_missing_git_annex_is_a_clear_error(monkeypatch, tmp_path):
    fake = types.ModuleType("datalad")
    fake.api = types.ModuleType("datalad.api")
    monkeypatch.setitem(sys.modules, "datalad", fake)
    monkeypatch.setitem(sys.modules, "datalad.api", fake.api)
    real_which = shutil.which
    monkeypatch.setattr(datasets.shutil, "which", lambda name: None if name == "git-annex" else real_which(name))
    with pytest.raises(RuntimeError, match="git-annex"):
        download_dataset(repo=str(tmp_path), remote_path="x", local_folder=tmp_path / "c")
