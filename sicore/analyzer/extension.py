"""AnalyzerExtension: the base class of every analyzer extension, and the registry of extension classes.

An extension computes something from a SortingAnalyzer (and possibly other extensions), keeps it in
``data`` (a dict of arrays), its parameters in ``params`` and ``run_info`` (``run_completed``,
``runtime_s``). The analyzer's storage saves and loads these three pieces; the extension never
touches files itself (a large array it fills may be a file the storage gave it, see ``_new_data_array``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

# extension_name -> class; filled by register_result_extension
_EXTENSION_REGISTRY: dict[str, type["AnalyzerExtension"]] = {}


def register_result_extension(extension_class: type["AnalyzerExtension"]) -> type["AnalyzerExtension"]:
    """Make an extension class computable by name with ``SortingAnalyzer.compute``.

    Parameters
    ----------
    extension_class : type
        A subclass of ``AnalyzerExtension`` with a non-empty ``extension_name``.

    Returns
    -------
    extension_class : type
        The same class (so this can be used as a decorator).
    """
    if not (isinstance(extension_class, type) and issubclass(extension_class, AnalyzerExtension)):
        raise TypeError(f"extension_class must be a subclass of AnalyzerExtension, got {extension_class!r}")
    name = extension_class.extension_name
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"extension_class.extension_name must be an identifier-like string, got {name!r}")
    _EXTENSION_REGISTRY[name] = extension_class
    return extension_class


def get_extension_class(extension_name: str) -> type["AnalyzerExtension"]:
    """The registered class of ``extension_name``; a KeyError lists the known names."""
    if extension_name not in _EXTENSION_REGISTRY:
        raise KeyError(
            f"extension_name {extension_name!r} is not a registered extension; "
            f"known extensions: {sorted(_EXTENSION_REGISTRY)}"
        )
    return _EXTENSION_REGISTRY[extension_name]


def get_available_analyzer_extensions() -> list[str]:
    """Names of all registered extensions, in registration order."""
    return list(_EXTENSION_REGISTRY)


def parents_of(extension_name: str) -> list[list[str]]:
    """Dependencies of an extension as groups of alternatives (``"a|b"`` gives ``["a", "b"]``)."""
    return [dep.split("|") for dep in get_extension_class(extension_name).depend_on]


def children_of(extension_name: str) -> list[str]:
    """Registered extensions that depend on ``extension_name`` (directly)."""
    return [name for name in _EXTENSION_REGISTRY
            if any(extension_name in group for group in parents_of(name))]


def dependency_order(extension_names: list[str]) -> list[str]:
    """``extension_names`` reordered so that parents come before children (stable otherwise)."""
    names = list(dict.fromkeys(extension_names))
    ordered: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in ordered or name not in names:
            return
        if name in stack:
            raise ValueError(f"extensions {stack + (name,)} depend on each other in a cycle")
        for group in parents_of(name):
            for parent in group:
                visit(parent, stack + (name,))
        ordered.append(name)

    for name in names:
        visit(name, ())
    return ordered


class AnalyzerExtension:
    """Base class of analyzer extensions.

    Subclasses set the class attributes and implement ``_set_params``, ``_run`` and ``_get_data``;
    they implement ``_select_units_extension_data`` and ``_merge_extension_data`` to follow curation.

    Attributes
    ----------
    extension_name : str
        Name used by ``SortingAnalyzer.compute`` and as folder/group name on disk.
    depend_on : tuple of str
        Extensions that must be computed first; ``"a|b"`` means a or b.
    need_recording : bool
        True when computing needs the recording (not only the sorting and other extensions).
    need_job_kwargs : bool
        True when ``_run`` takes job kwargs (a chunked pass over the recording).
    si_class : str
        The class path written in ``info.json`` (SpikeInterface's, so SI can load the folder).
    """

    extension_name: str = ""
    depend_on: tuple[str, ...] = ()
    need_recording: bool = False
    need_job_kwargs: bool = False
    si_class: str = ""

    def __init__(self, sorting_analyzer):
        self._sorting_analyzer = sorting_analyzer
        self.params: dict | None = None
        self.data: dict[str, Any] = {}
        self.run_info: dict[str, Any] = {"run_completed": False, "runtime_s": None}
        # set by SortingAnalyzer.compute while run() works for a binary folder save (see _new_data_array)
        self._stage = None

    # ------------------------------------------------------------------ basics
    @property
    def sorting_analyzer(self):
        return self._sorting_analyzer

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.extension_name}"

    @classmethod
    def info(cls) -> dict:
        """The content of ``info.json``."""
        from ..version import __version__

        if cls.si_class:
            return {"class": cls.si_class, "module": "spikeinterface", "version": "0.105.3"}
        return {"class": f"{cls.__module__}.{cls.__name__}", "module": "sicore", "version": __version__}

    @classmethod
    def get_required_dependencies(cls) -> list[list[str]]:
        return [dep.split("|") for dep in cls.depend_on]

    # ------------------------------------------------------------- lifecycle
    def set_params(self, **params) -> None:
        """Validate and complete ``params`` (subclass ``_set_params``) and store them in ``params``."""
        self.params = self._set_params(**params)

    def run(self, verbose: bool = False, **job_kwargs) -> None:
        """Compute ``data`` and set ``run_info``; the caller saves it."""
        if self.params is None:
            raise ValueError(f"{self.extension_name}: set_params() must be called before run()")
        if self.need_recording and not self._sorting_analyzer._any_recording():
            raise ValueError(
                f"extension {self.extension_name!r} needs the recording, but this analyzer has none "
                "(recordingless); attach one with set_temporary_recording(recording)"
            )
        self.run_info = {"run_completed": False, "runtime_s": None}
        start = time.perf_counter()
        if self.need_job_kwargs:
            self._run(verbose=verbose, **job_kwargs)
        else:
            self._run(verbose=verbose)
        self.run_info = {"run_completed": True, "runtime_s": time.perf_counter() - start}

    def save(self) -> None:
        """Write this extension with the analyzer's storage (atomic; memory storage keeps it only)."""
        self._sorting_analyzer._storage.save_extension(self)

    def copy(self, new_sorting_analyzer, unit_ids=None) -> "AnalyzerExtension":
        """The same extension attached to ``new_sorting_analyzer``, restricted to ``unit_ids``."""
        new = type(self)(new_sorting_analyzer)
        new.params = dict(self.params)
        new.run_info = dict(self.run_info)
        if unit_ids is None:
            new.data = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in self.data.items()}
        else:
            new.data = self._select_units_extension_data(unit_ids, new_sorting_analyzer)
        return new

    def merge(self, new_sorting_analyzer, merge_unit_groups, new_unit_ids, keep_mask, **job_kwargs):
        """The extension attached to ``new_sorting_analyzer`` after merging units.

        Returns None when the extension cannot follow the merge (it is then dropped).
        """
        new = type(self)(new_sorting_analyzer)
        new.params = dict(self.params)
        data = self._merge_extension_data(merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask,
                                          **job_kwargs)
        if data is None:
            return None
        new.data = data
        new.run_info = dict(self.run_info)
        return new

    def _new_data_array(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """A zero-filled array that ``_run`` fills and stores as ``data[key]``.

        When the result is going to a binary folder, it is the ``.npy`` file of the pending extension
        folder, memory-mapped (``ExtensionStage``): filled in place, it is saved without a copy and
        never held in memory. Otherwise an ordinary array.
        """
        if self._stage is not None:
            return self._stage.new_array(key, shape, dtype)
        return np.zeros(shape, dtype=dtype)

    # -------------------------------------------------------- data access
    def get_data(self, *args, **kwargs):
        """The computed data (see each extension for the shape)."""
        if not self.run_info.get("run_completed", False):
            raise ValueError(f"extension {self.extension_name!r} is not computed")
        return self._get_data(*args, **kwargs)

    # --------------------------------------------------------- to override
    def _set_params(self, **params) -> dict:
        raise NotImplementedError

    def _run(self, verbose: bool = False, **job_kwargs) -> None:
        raise NotImplementedError

    def _get_data(self, *args, **kwargs):
        raise NotImplementedError

    def _params_from_json(self, params: dict) -> dict:
        """Params as read from JSON (e.g. lists back to tuples); subclasses override when needed."""
        return params

    def _select_units_extension_data(self, unit_ids, new_sorting_analyzer) -> dict:
        raise NotImplementedError(f"extension {self.extension_name!r} does not support unit selection")

    def _merge_extension_data(self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask,
                              **job_kwargs) -> dict | None:
        return None


def extension_function(extension_name: str):
    """A function ``compute_<name>(sorting_analyzer, load_if_exists=None, **kwargs)`` (SpikeInterface style).

    With ``load_if_exists=True`` an already computed extension is returned as is; otherwise the
    extension is (re)computed with ``kwargs`` (its params and job kwargs).
    """

    def compute_function(sorting_analyzer, load_if_exists: bool | None = None, **kwargs):
        if load_if_exists and sorting_analyzer.has_extension(extension_name):
            return sorting_analyzer.get_extension(extension_name)
        return sorting_analyzer.compute(extension_name, **kwargs)

    compute_function.__name__ = f"compute_{extension_name}"
    compute_function.__qualname__ = compute_function.__name__
    compute_function.__doc__ = (
        f"Compute the {extension_name!r} extension of ``sorting_analyzer`` (see ``SortingAnalyzer.compute``).\n\n"
        "Parameters\n----------\nsorting_analyzer : SortingAnalyzer\n    The analyzer.\n"
        "load_if_exists : bool or None, default: None\n    Return the existing extension instead of recomputing.\n"
        "**kwargs\n    Params of the extension and job kwargs.\n"
    )
    return compute_function
