"""Download test datasets (e.g. NEO's ephy_testing_data on GIN) through datalad, with a local cache.

datalad is an optional dependency (``pip install datalad``); it runs ``git`` and ``git-annex``, which
must be on the PATH. It is imported only when a download is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path, PurePosixPath

DEFAULT_REPO = "https://gin.g-node.org/NeuralEnsemble/ephy_testing_data"
DEFAULT_REMOTE_PATH = "mearec/mearec_test_10s.h5"
# Environment variable overriding the default cache folder (e.g. on a cluster's scratch space).
DATASETS_FOLDER_ENV = "SICORE_DATASETS_FOLDER"

_global_dataset_folder: Path | None = None


def get_global_dataset_folder() -> Path:
    """Folder under which ``download_dataset`` clones repositories when no ``local_folder`` is given.

    In order: the folder set with ``set_global_dataset_folder``, the ``SICORE_DATASETS_FOLDER``
    environment variable, ``~/spikeinterface_datasets`` (SpikeInterface's default).
    """
    if _global_dataset_folder is not None:
        return _global_dataset_folder
    from_env = os.environ.get(DATASETS_FOLDER_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.home() / "spikeinterface_datasets"


def set_global_dataset_folder(folder: str | Path | None) -> None:
    """Set the default dataset cache folder for this session (None: back to the default).

    Parameters
    ----------
    folder : str or Path or None
        Folder holding one clone per repository.
    """
    global _global_dataset_folder
    _global_dataset_folder = None if folder is None else Path(folder).expanduser()


def _import_datalad():
    try:
        import datalad.api as datalad_api
    except ImportError as err:
        raise ImportError(
            "download_dataset needs the optional dependency datalad: `pip install datalad` "
            "(it also needs git and git-annex, e.g. `apt-get install git-annex` or `conda install -c conda-forge "
            "git-annex`)"
        ) from err
    for tool in ("git", "git-annex"):
        if shutil.which(tool) is None:
            raise RuntimeError(
                f"download_dataset needs {tool!r} on the PATH (datalad runs it): install git-annex with "
                "`apt-get install git-annex`, `brew install git-annex` or `conda install -c conda-forge git-annex`"
            )
    return datalad_api


def _clean_remote_path(remote_path) -> str:
    """``remote_path`` as a relative POSIX path inside the repository (a leading "/" is allowed)."""
    if not isinstance(remote_path, (str, os.PathLike)):
        raise ValueError(f"remote_path must be a path inside the repository, got {remote_path!r}")
    parts = [p for p in PurePosixPath(Path(remote_path).as_posix()).parts if p not in ("/", ".")]
    if not parts or ".." in parts:
        raise ValueError(
            f"remote_path must name a file or folder inside the repository (e.g. 'mearec/mearec_test_10s.h5'), "
            f"got {str(remote_path)!r}"
        )
    return "/".join(parts)


def _repo_name(repo: str) -> str:
    name = str(repo).rstrip("/\\").replace("\\", "/").split("/")[-1]
    name = name[:-4] if name.endswith(".git") else name
    if not name:
        raise ValueError(f"repo must be a URL or path of a datalad/git repository, got {repo!r}")
    return name


@contextlib.contextmanager
def _quiet_datalad():
    """Hide datalad's INFO log lines (clone attempts, fetching...) for the duration of a call."""
    logger = logging.getLogger("datalad")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _check_results(results, what: str) -> list:
    """Raise on datalad results that are neither ok nor notneeded, with datalad's messages."""
    failed = [r for r in results if r.get("status") not in ("ok", "notneeded")]
    if failed:
        messages = "; ".join(f"{r.get('path', '')}: {_message(r)}" for r in failed)
        raise RuntimeError(f"{what} failed: {messages}")
    return results


def _message(result) -> str:
    message = result.get("message", "")
    if isinstance(message, (tuple, list)) and message:
        try:
            return str(message[0]) % tuple(message[1:])
        except (TypeError, ValueError):
            return " ".join(str(m) for m in message)
    return str(message or result.get("status", ""))


def _content_present(path: Path) -> bool:
    """True when a file's content is there (an annexed file without content is a dangling symlink)."""
    return path.is_file()


def download_dataset(
    repo: str | None = DEFAULT_REPO,
    remote_path: str | None = DEFAULT_REMOTE_PATH,
    local_folder: str | Path | None = None,
    update_if_exists: bool = False,
    unlock: bool = False,
) -> Path:
    """Download a file or folder of a datalad repository and return its local path.

    The repository is cloned once (without content) into ``local_folder``; each call then fetches
    only the content of ``remote_path`` that is not there yet, so a second call downloads nothing.

    Parameters
    ----------
    repo : str or None, default: "https://gin.g-node.org/NeuralEnsemble/ephy_testing_data"
        URL or local path of the datalad (git-annex) repository; None means the default.
    remote_path : str or None, default: "mearec/mearec_test_10s.h5"
        File or folder inside the repository (a leading "/" is ignored); None means the default.
    local_folder : str or Path or None, default: None
        Where the repository is cloned; None means ``get_global_dataset_folder() / <repository name>``
        (``~/spikeinterface_datasets/ephy_testing_data`` unless ``SICORE_DATASETS_FOLDER`` is set).
    update_if_exists : bool, default: False
        Pull the repository's latest version into an existing clone (``datalad update --how merge``)
        and fetch the content of ``remote_path`` again if it changed.
    unlock : bool, default: False
        Turn the downloaded annexed files into regular writable files (``datalad unlock``) instead of
        read-only symlinks into the annex.

    Returns
    -------
    local_path : Path
        ``local_folder / remote_path``.

    Raises
    ------
    ImportError
        datalad is not installed.
    RuntimeError
        git or git-annex is missing, or datalad fails (e.g. the repository cannot be reached).
    FileNotFoundError
        ``remote_path`` is not in the repository.
    FileExistsError
        ``local_folder`` exists and is not a clone of a repository.
    """
    repo = DEFAULT_REPO if repo is None else str(repo)
    remote_path = _clean_remote_path(DEFAULT_REMOTE_PATH if remote_path is None else remote_path)
    datalad_api = _import_datalad()
    if local_folder is None:
        local_folder = get_global_dataset_folder() / _repo_name(repo)
    local_folder = Path(local_folder).expanduser().absolute()
    local_path = local_folder / remote_path

    with _quiet_datalad():
        if (local_folder / ".git").exists():
            dataset = datalad_api.Dataset(str(local_folder))
            if update_if_exists:
                _check_results(
                    dataset.update(how="merge", result_renderer="disabled", return_type="list", on_failure="ignore"),
                    f"updating {local_folder} from {repo}",
                )
        else:
            if local_folder.exists() and any(local_folder.iterdir()):
                raise FileExistsError(
                    f"local_folder {local_folder} exists, is not empty and is not a clone of a repository; "
                    "give another local_folder or remove it"
                )
            local_folder.parent.mkdir(parents=True, exist_ok=True)
            _check_results(
                datalad_api.install(
                    path=str(local_folder), source=repo, result_renderer="disabled", return_type="list",
                    on_failure="ignore", result_xfm=None,
                ),
                f"cloning {repo} into {local_folder}",
            )
            dataset = datalad_api.Dataset(str(local_folder))

        # Cached file: no git-annex call at all. Folders ask git-annex, which skips what is present.
        if update_if_exists or not _content_present(local_path):
            results = dataset.get(remote_path, result_renderer="disabled", return_type="list", on_failure="ignore")
            if not local_path.exists() and not local_path.is_symlink():
                # datalad reports it as "impossible: path does not exist"; say which argument is wrong
                raise FileNotFoundError(f"remote_path {remote_path!r} is not in the repository {repo}")
            _check_results(results, f"downloading {remote_path!r} from {repo}")
        if unlock:
            _check_results(
                dataset.unlock(remote_path, result_renderer="disabled", return_type="list", on_failure="ignore"),
                f"unlocking {remote_path!r}",
            )
    return local_path
