"""SortingAnalyzer: a sorting paired with its recording, a sparsity and computed extensions.

``create_sorting_analyzer`` builds one (in memory, as a ``binary_folder`` or as ``zarr``),
``load_sorting_analyzer`` reopens a saved one (recordingless when its recording cannot be rebuilt).
Extensions are computed with ``compute``; recomputing an extension deletes the extensions that
depend on it (in memory and on disk), so no child outlives the parent it was computed from.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from pathlib import Path

import numpy as np

from ..job import split_job_kwargs
from . import core_extensions  # noqa: F401  (registers the core extensions)
from .extension import (
    AnalyzerExtension,
    children_of,
    dependency_order,
    get_available_analyzer_extensions,
    get_extension_class,
)
from .storage import (
    AnalyzerRoot,
    BinaryFolderStorage,
    IncompleteExtensionError,
    MemoryStorage,
    get_rec_attributes,
    resolve,
)

_FORMATS = ("memory", "binary_folder", "zarr")


class _ResolvedOnUse:
    """An instance attribute that may hold a ``storage.Deferred``: resolved on first read, then kept.

    The value lives in ``<name>_value`` of the instance's ``__dict__``.
    """

    def __set_name__(self, owner, name: str) -> None:
        self.slot = f"{name}_value"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            value = resolve(obj.__dict__[self.slot])
        except KeyError:
            raise AttributeError(self.slot) from None
        obj.__dict__[self.slot] = value
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self.slot] = value


class SortingAnalyzer:
    """A sorting, its recording (or only the recording's attributes), a sparsity and extensions.

    Build it with ``create_sorting_analyzer`` or ``load_sorting_analyzer`` rather than directly.

    Parameters
    ----------
    root : AnalyzerRoot
        Sorting, recording (or None), recording attributes, probe group, sparsity mask and settings.
    sparsity : ChannelSparsity or None
        The sparsity (None: dense).
    storage : MemoryStorage or BinaryFolderStorage or ZarrStorage
        Where extensions are saved.
    """

    def __init__(self, root: AnalyzerRoot, sparsity, storage):
        self.sorting = root.sorting
        self._recording = root.recording  # may be Deferred (see the properties below)
        self._temporary_recording = None
        self.rec_attributes = root.rec_attributes
        self._probegroup = root.probegroup
        self.sparsity = sparsity
        settings = dict(root.settings)
        self.return_scaled = bool(settings.get("return_in_uV", settings.get("return_scaled", True)))
        self.peak_sign = settings.get("peak_sign", "both")
        self.peak_mode = settings.get("peak_mode", "extremum")
        self._storage = storage
        self.extensions: dict[str, AnalyzerExtension] = {}
        self._curation_spike_map: np.ndarray | None = None
        # saved extensions made stale by an in-memory (save=False) recompute of a parent: never lazily loaded
        self._stale_on_disk: set[str] = set()
        # extensions hidden with hide_extension (the loaded object, or None when it was only on disk)
        self._hidden_extensions: dict[str, AnalyzerExtension | None] = {}

    # A loaded analyzer may defer reading its recording and probe group until first used
    # (storage.Deferred): these attributes read them then.
    _recording = _ResolvedOnUse()
    _probegroup = _ResolvedOnUse()

    # ------------------------------------------------------------------ repr
    def __repr__(self) -> str:
        text = (f"SortingAnalyzer: {self.get_num_channels()} channels - {self.get_num_units()} units - "
                f"{self.get_num_segments()} segments - {self.format}")
        if self.is_sparse():
            text += " - sparse"
        if self.has_recording():
            text += " - has recording"
        if self.has_temporary_recording():
            text += " - has temporary recording"
        text += f"\nLoaded {len(self.extensions)} extensions"
        if self.extensions:
            text += ": " + ", ".join(self.extensions)
        return text

    # -------------------------------------------------------------- storage
    @property
    def format(self) -> str:
        return self._storage.format

    @property
    def folder(self) -> Path | None:
        return self._storage.folder

    @property
    def return_in_uV(self) -> bool:
        return self.return_scaled

    def settings(self) -> dict:
        return {"return_in_uV": self.return_scaled, "peak_sign": self.peak_sign, "peak_mode": self.peak_mode}

    # ------------------------------------------------------------- recording
    def has_recording(self) -> bool:
        return self._recording is not None

    def has_temporary_recording(self) -> bool:
        return self._temporary_recording is not None

    @property
    def recording(self):
        """The recording (the temporary one when set); an error in recordingless mode."""
        if self._temporary_recording is not None:
            return self._temporary_recording
        if self._recording is None:
            raise ValueError(
                "this SortingAnalyzer has no recording (recordingless): its provenance could not be loaded; "
                "use set_temporary_recording(recording)"
            )
        return self._recording

    def _any_recording(self) -> bool:
        return self._recording is not None or self._temporary_recording is not None

    def set_temporary_recording(self, recording, check_dtype: bool = True) -> None:
        """Use ``recording`` for computations (not saved); it must match the stored recording attributes.

        Parameters
        ----------
        recording : BaseRecording or None
            The recording; None removes the temporary recording.
        check_dtype : bool, default: True
            Also require the same dtype.
        """
        if recording is None:
            self._temporary_recording = None
            return
        attributes = get_rec_attributes(recording)
        problems = []
        if not np.array_equal(attributes["channel_ids"], self.rec_attributes["channel_ids"]):
            problems.append("channel_ids")
        if not np.isclose(attributes["sampling_frequency"], self.rec_attributes["sampling_frequency"]):
            problems.append("sampling_frequency")
        if list(attributes["num_samples"]) != list(self.rec_attributes["num_samples"]):
            problems.append("num_samples")
        if check_dtype and "dtype" in self.rec_attributes and attributes["dtype"] != str(np.dtype(self.rec_attributes["dtype"])):
            problems.append("dtype")
        if problems:
            raise ValueError(f"recording: its {', '.join(problems)} differ from the analyzer's recording attributes")
        if self._recording is not None:
            warnings.warn("the analyzer's recording is temporarily replaced")
        self._temporary_recording = recording

    # --------------------------------------------------------------- getters
    @property
    def unit_ids(self) -> np.ndarray:
        return self.sorting.unit_ids

    @property
    def channel_ids(self) -> np.ndarray:
        return np.asarray(self.rec_attributes["channel_ids"])

    @property
    def sampling_frequency(self) -> float:
        return float(self.sorting.sampling_frequency)

    def get_sampling_frequency(self) -> float:
        return self.sampling_frequency

    def get_num_units(self) -> int:
        return self.sorting.get_num_units()

    def get_num_channels(self) -> int:
        return int(self.rec_attributes["num_channels"])

    def get_num_segments(self) -> int:
        return self.sorting.get_num_segments()

    def get_num_samples(self, segment_index: int | None = None) -> int:
        """Samples of a segment (``segment_index`` required when there are several)."""
        segment_index = self.sorting._check_segment_index(segment_index)
        return int(self.rec_attributes["num_samples"][segment_index])

    def get_total_samples(self) -> int:
        return int(sum(self.rec_attributes["num_samples"]))

    def get_total_duration(self) -> float:
        if self._any_recording():
            return float(self.recording.get_total_duration())
        return self.get_total_samples() / self.sampling_frequency

    def get_dtype(self) -> np.dtype:
        return np.dtype(self.rec_attributes.get("dtype", "float32"))

    def is_filtered(self) -> bool:
        return bool(self.rec_attributes.get("is_filtered", False))

    def is_sparse(self) -> bool:
        return self.sparsity is not None

    @property
    def sparsity_mask(self) -> np.ndarray | None:
        return None if self.sparsity is None else np.asarray(self.sparsity.mask, dtype=bool)

    def _unit_channel_indices(self, unit_index: int) -> np.ndarray:
        if self.sparsity is None:
            return np.arange(self.get_num_channels())
        return np.flatnonzero(self.sparsity.mask[int(unit_index)])

    def channel_ids_to_indices(self, channel_ids) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self.channel_ids.tolist())}
        try:
            return np.array([lookup[c] for c in np.asarray(channel_ids).tolist()], dtype=np.int64)
        except KeyError as err:
            raise KeyError(f"channel_ids: {err.args[0]!r} is not a channel of this analyzer") from None

    def get_probegroup(self):
        if self._any_recording() and self.recording.has_probe():
            return self.recording.get_probegroup()
        if self._probegroup is None:
            raise ValueError("this analyzer has no probe")
        return self._probegroup

    def get_probe(self):
        probes = self.get_probegroup().probes
        if len(probes) != 1:
            raise ValueError(f"{len(probes)} probes are attached; use get_probegroup()")
        return probes[0]

    def get_channel_locations(self) -> np.ndarray:
        """Channel positions ``(num_channels, ndim)`` (from the recording, else the stored probe)."""
        if self._any_recording():
            return self.recording.get_channel_locations()
        if self._probegroup is not None:
            contacts = self._probegroup.to_numpy(complete=True)
            order = np.argsort(contacts["device_channel_indices"], kind="stable")
            axes = [name for name in ("x", "y", "z") if name in contacts.dtype.names]
            return np.stack([contacts[a][order] for a in axes], axis=1).astype(np.float64)
        locations = self.rec_attributes["properties"].get("location")
        if locations is None:
            raise ValueError("this analyzer has no channel locations (no probe was attached to the recording)")
        return np.asarray(locations, dtype=np.float64)

    def get_recording_property(self, key: str):
        if self._any_recording():
            return self.recording.get_property(key)
        return self.rec_attributes["properties"].get(key)

    def get_sorting_property(self, key: str, ids=None):
        return self.sorting.get_property(key, ids=ids)

    # ------------------------------------------------------------ main channels
    @property
    def main_channel_indices(self) -> np.ndarray:
        """Each unit's main channel index (SpikeInterface 0.105.3's ``main_channel_indices``).

        From the sorting property "main_channel_id" when it is there; otherwise derived once (and kept as the
        property, in memory only) from, in order: the "templates" extension (average, else median; extremum
        with the analyzer's ``peak_sign`` / ``peak_mode``), the sparsity (the channel closest to the mean
        location of the unit's channels), or one pass over the recording (``estimate_main_channel_from_recording``).
        """
        ids = self.sorting.get_property("main_channel_id")
        if ids is not None:
            return _ids_to_channel_indices(self.channel_ids, ids)
        indices = self._derive_main_channel_indices()
        self.sorting.set_property("main_channel_id", self.channel_ids[indices])
        return indices

    def get_main_channels(self, outputs: str = "index", with_dict: bool = False):
        """The main channel of each unit.

        Parameters
        ----------
        outputs : "index" | "id", default: "index"
            Channel indices or channel ids.
        with_dict : bool, default: False
            Return ``{unit_id: channel}`` instead of an array.

        Returns
        -------
        main_channels : np.ndarray or dict
        """
        if outputs not in ("index", "id"):
            raise ValueError(f"outputs must be 'index' or 'id', got {outputs!r}")
        indices = self.main_channel_indices
        channels = indices if outputs == "index" else self.channel_ids[indices]
        if with_dict:
            return dict(zip(self.unit_ids, channels))
        return channels

    def _derive_main_channel_indices(self) -> np.ndarray:
        from ..template_tools import _amplitudes_array, _extremum_channel_indices, estimate_main_channel_from_recording

        templates = self.get_extension("templates")
        if templates is not None:
            for key in ("average", "median"):
                if key in templates.data:
                    amplitudes = _amplitudes_array(np.asarray(templates.data[key]), templates.nbefore,
                                                   self.peak_sign, self.peak_mode)
                    return _extremum_channel_indices(amplitudes, None)
        if self.is_sparse():
            locations = self.get_channel_locations()
            main = np.zeros(self.get_num_units(), dtype=np.int64)
            for unit_index, mask in enumerate(self.sparsity.mask):
                center = locations[mask].mean(axis=0)
                main[unit_index] = int(np.argmin(np.linalg.norm(locations - center, axis=1)))
            return main
        if self._any_recording():
            return np.asarray(estimate_main_channel_from_recording(
                self.recording, self.sorting, peak_sign=self.peak_sign, peak_mode=self.peak_mode,
                num_spikes_for_main_channel=100, progress_bar=False), dtype=np.int64)
        raise ValueError("main channels: this analyzer is dense, recordingless and has no templates; attach a "
                         "recording (set_temporary_recording) or compute('templates') first")

    # ------------------------------------------------------------ extensions
    def get_computable_extensions(self) -> list[str]:
        """Names of every registered extension."""
        return get_available_analyzer_extensions()

    def get_loaded_extension_names(self) -> list[str]:
        return list(self.extensions)

    def get_saved_extension_names(self) -> list[str]:
        saved = self._storage.saved_extension_names()
        return [n for n in get_available_analyzer_extensions() if n in saved]

    def get_default_extension_params(self, extension_name: str) -> dict:
        cls = get_extension_class(extension_name)
        signature = inspect.signature(cls._set_params)
        return {name: p.default for name, p in signature.parameters.items()
                if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD}

    def hide_extension(self, extension_name: str) -> None:
        """Treat a computed extension as absent until ``unhide_extension`` (nothing is deleted, in memory or on disk).

        For example, hiding "waveforms" makes ``compute("templates")`` estimate the templates from the
        recording around the random spikes instead of averaging the waveforms, while the saved waveforms
        (and the templates' saved parameters, which SpikeInterface reads) stay as they are. Computing or
        deleting the extension unhides it.

        Parameters
        ----------
        extension_name : str
            A registered extension name (computed or not).
        """
        if extension_name not in get_available_analyzer_extensions():
            raise ValueError(f"extension_name: unknown extension {extension_name!r}; "
                             f"one of {get_available_analyzer_extensions()}")
        if extension_name not in self._hidden_extensions:
            self._hidden_extensions[extension_name] = self.extensions.pop(extension_name, None)

    def unhide_extension(self, extension_name: str) -> None:
        """Undo ``hide_extension`` (a no-op when the extension is not hidden)."""
        if extension_name in self._hidden_extensions:
            extension = self._hidden_extensions.pop(extension_name)
            if extension is not None:
                self.extensions.setdefault(extension_name, extension)

    def get_hidden_extension_names(self) -> list[str]:
        """Names of the extensions hidden with ``hide_extension``."""
        return list(self._hidden_extensions)

    def has_extension(self, extension_name: str) -> bool:
        """True when the extension is loaded, or saved complete and loadable (and not hidden)."""
        if extension_name in self.extensions:
            return True
        if extension_name not in get_available_analyzer_extensions() or extension_name in self._stale_on_disk:
            return False
        if extension_name in self._hidden_extensions:
            return False
        if extension_name in self._storage.saved_extension_names():
            return self.load_extension(extension_name, missing_ok=True) is not None
        return False

    def get_extension(self, extension_name: str) -> AnalyzerExtension | None:
        """The extension (loaded from disk if needed), or None when it is not computed."""
        if extension_name in self.extensions:
            return self.extensions[extension_name]
        if extension_name not in get_available_analyzer_extensions() or extension_name in self._stale_on_disk:
            return None
        if extension_name in self._hidden_extensions:
            return None
        if extension_name in self._storage.saved_extension_names():
            return self.load_extension(extension_name, missing_ok=True)
        return None

    def load_extension(self, extension_name: str, missing_ok: bool = False) -> AnalyzerExtension | None:
        """Load a saved extension (arrays memory-mapped); an incomplete one warns and gives None."""
        cls = get_extension_class(extension_name)
        try:
            parts = self._storage.load_extension(extension_name)
        except IncompleteExtensionError as err:
            warnings.warn(str(err))
            return None
        except KeyError:
            if missing_ok:
                return None
            raise
        extension = cls(self)
        extension.params = extension._params_from_json(parts.params)
        extension.data = parts.data
        extension.run_info = parts.run_info
        self.extensions[extension_name] = extension
        return extension

    def load_all_saved_extension(self) -> None:
        """Load every complete saved extension whose parents are present."""
        saved = self.get_saved_extension_names()
        for name in dependency_order(saved):
            groups = get_extension_class(name).get_required_dependencies()
            if all(any(p in self.extensions for p in group) for group in groups):
                self.load_extension(name, missing_ok=True)

    def delete_extension(self, extension_name: str) -> None:
        """Delete an extension (memory and disk), and its children that no longer have a parent."""
        self._delete(extension_name, on_disk=True)
        for child in children_of(extension_name):
            groups = get_extension_class(child).get_required_dependencies()
            orphan = any(not any(self.has_extension(p) for p in group) for group in groups)
            if orphan and (child in self.extensions or child in self._storage.saved_extension_names()):
                self.delete_extension(child)

    def _delete(self, extension_name: str, on_disk: bool) -> None:
        self.extensions.pop(extension_name, None)
        self._hidden_extensions.pop(extension_name, None)
        if on_disk:
            self._storage.delete_extension(extension_name)
            self._stale_on_disk.discard(extension_name)
        elif extension_name in self._storage.saved_extension_names():
            self._stale_on_disk.add(extension_name)

    def _delete_children(self, extension_name: str, on_disk: bool) -> None:
        for child in children_of(extension_name):
            present = child in self.extensions or child in self._storage.saved_extension_names()
            if present:
                self._delete_children(child, on_disk)
                self._delete(child, on_disk)

    def compute(self, input, save: bool = True, extension_params: dict | None = None, verbose: bool = False,
                **kwargs):
        """Compute one or several extensions.

        Parameters
        ----------
        input : str or list of str or dict
            An extension name (``kwargs`` are its params and job kwargs), a list of names (``kwargs`` are job
            kwargs, params come from ``extension_params``), or a dict ``{name: params}``.
        save : bool, default: True
            Write the result with the analyzer's storage; False keeps it in memory only.
        extension_params : dict or None, default: None
            ``{name: params}`` for a list input.
        verbose : bool, default: False
            Print progress information.
        **kwargs
            Params of a single extension and job kwargs (``n_jobs``, ``chunk_duration``, ``progress_bar``...).

        Returns
        -------
        extension : AnalyzerExtension or None
            The extension for a str input, None otherwise.
        """
        if isinstance(input, str):
            return self.compute_one_extension(input, save=save, verbose=verbose, **kwargs)
        if isinstance(input, dict):
            params_of = dict(input)
            names = list(input)
        elif isinstance(input, (list, tuple)):
            params_of = dict(extension_params or {})
            names = list(input)
            unknown = [n for n in params_of if n not in names]
            if unknown:
                raise ValueError(f"extension_params has {unknown}, which are not in the extensions to compute {names}")
        else:
            raise ValueError(f"input must be an extension name, a list of names or a dict, got {type(input).__name__}")
        specific, job_kwargs = split_job_kwargs(kwargs)
        if specific:
            raise ValueError(
                f"{sorted(specific)} are not job kwargs; with several extensions give their params in "
                "extension_params={name: {...}}"
            )
        for name in names:
            get_extension_class(name)
        for name in dependency_order(names):
            self.compute_one_extension(name, save=save, verbose=verbose, **(params_of.get(name) or {}),
                                       **job_kwargs)
        return None

    def compute_one_extension(self, extension_name: str, save: bool = True, verbose: bool = False, **kwargs):
        """Compute one extension (see ``compute``); children of a recomputed extension are deleted first."""
        cls = get_extension_class(extension_name)
        params, job_kwargs = split_job_kwargs(kwargs)
        for group in cls.get_required_dependencies():
            if not any(self.has_extension(parent) for parent in group):
                raise ValueError(
                    f"extension {extension_name!r} depends on {' or '.join(repr(p) for p in group)}, which is not "
                    f"computed: compute({group[-1]!r}) first"
                )
        extension = cls(self)
        _check_params(cls, params)
        extension.set_params(**params)
        if extension.need_recording and not self._any_recording():
            raise ValueError(
                f"extension {extension_name!r} needs the recording, but this analyzer is recordingless; "
                "use set_temporary_recording(recording)"
            )
        on_disk = save and self.format != "memory"
        self._delete_children(extension_name, on_disk=on_disk)
        staged = getattr(self._storage, "staged_extension", None) if on_disk else None
        with staged(extension_name) if staged else contextlib.nullcontext() as stage:
            extension._stage = stage  # large arrays are written straight into the pending folder
            try:
                extension.run(verbose=verbose, **job_kwargs)
            finally:
                extension._stage = None
            self._hidden_extensions.pop(extension_name, None)  # a fresh result is visible
            self.extensions[extension_name] = extension
            if stage is not None:
                self._storage.save_extension(extension, stage)
            elif on_disk:
                extension.save()
            if on_disk:
                self._stale_on_disk.discard(extension_name)
        return extension

    def compute_several_extensions(self, extensions: dict, save: bool = True, verbose: bool = False, **job_kwargs):
        """Compute ``{name: params}`` in dependency order."""
        return self.compute(extensions, save=save, verbose=verbose, **job_kwargs)

    # -------------------------------------------------------- save / curate
    def save_as(self, folder=None, format: str = "memory", overwrite: bool = False) -> "SortingAnalyzer":
        """A copy of this analyzer (and all its extensions) in another format/folder.

        Parameters
        ----------
        folder : str or Path or None, default: None
            Target folder (required unless ``format="memory"``).
        format : "memory" | "binary_folder" | "zarr", default: "memory"
            Target format.
        overwrite : bool, default: False
            Replace an existing folder.
        """
        return self._copy_to(format, folder, overwrite, sorting=self.sorting, sparsity=self.sparsity,
                             unit_ids=None)

    def copy(self) -> "SortingAnalyzer":
        return self.save_as(format="memory")

    def _copy_to(self, format: str, folder, overwrite: bool, sorting, sparsity, unit_ids,
                 spike_map: np.ndarray | None = None, merge=None) -> "SortingAnalyzer":
        root = AnalyzerRoot(sorting, self._recording, dict(self.rec_attributes), self._probegroup,
                            None if sparsity is None else np.asarray(sparsity.mask, dtype=bool), self.settings())
        new = _new_analyzer(root, sparsity, format, folder, overwrite)
        new._temporary_recording = self._temporary_recording
        new._curation_spike_map = spike_map
        for name in dependency_order(list(self.extensions)):
            extension = self.extensions[name]
            if merge is None:
                copied = extension.copy(new, unit_ids=unit_ids)
            else:
                copied = extension.merge(new, *merge)
            if copied is None:
                continue
            new.extensions[name] = copied
            if new.format != "memory":
                copied.save()
        new._curation_spike_map = None
        return new

    def select_units(self, unit_ids, format: str = "memory", folder=None) -> "SortingAnalyzer":
        """A new analyzer with only ``unit_ids`` (in that order); extensions follow."""
        from .curation import select_units

        return select_units(self, unit_ids, format=format, folder=folder)

    def remove_units(self, remove_unit_ids, format: str = "memory", folder=None) -> "SortingAnalyzer":
        """A new analyzer without ``remove_unit_ids``; extensions follow."""
        remove_indices = self.sorting.ids_to_indices(remove_unit_ids)
        keep = np.ones(self.get_num_units(), dtype=bool)
        keep[remove_indices] = False
        return self.select_units(self.unit_ids[keep], format=format, folder=folder)

    def merge_units(self, *merge_unit_groups, new_unit_ids=None, new_id_strategy: str = "append",
                    format: str = "memory", folder=None, return_new_unit_ids: bool = False, **job_kwargs):
        """A new analyzer where each group of units becomes one unit; extensions follow.

        Accepts ``merge_units([0, 1], [2, 3])`` and ``merge_units([[0, 1], [2, 3]])``.

        Parameters
        ----------
        *merge_unit_groups : lists of unit ids
            The groups, given one per argument or as a single list of lists.
        new_unit_ids : list or None, default: None
            Ids of the merged units (default: ``new_id_strategy``).
        new_id_strategy : "append" | "take_first", default: "append"
            "append": new ids after the largest id; "take_first": the first id of each group.
        format : "memory" | "binary_folder" | "zarr", default: "memory"
            Format of the new analyzer.
        folder : str or Path or None, default: None
            Its folder.
        return_new_unit_ids : bool, default: False
            Also return the new ids.
        """
        from .curation import merge_units

        return merge_units(self, merge_unit_groups, new_unit_ids=new_unit_ids, new_id_strategy=new_id_strategy,
                           format=format, folder=folder, return_new_unit_ids=return_new_unit_ids)


def _check_params(cls, params: dict) -> None:
    signature = inspect.signature(cls._set_params)
    if any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    known = [n for n in signature.parameters if n != "self"]
    unknown = [k for k in params if k not in known]
    if unknown:
        raise ValueError(f"extension {cls.extension_name!r} has no parameter {unknown}; its parameters are {known}")


def _new_analyzer(root: AnalyzerRoot, sparsity, format: str, folder, overwrite: bool) -> SortingAnalyzer:
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {list(_FORMATS)}, got {format!r}")
    if format == "memory":
        from ..numpy_objects import NumpySorting

        sorting = NumpySorting.from_sorting(root.sorting, with_metadata=True, copy_spike_vector=True)
        root = AnalyzerRoot(sorting, root.recording, root.rec_attributes, root.probegroup, root.sparsity_mask,
                            root.settings)
        return SortingAnalyzer(root, sparsity, MemoryStorage())
    if folder is None:
        raise ValueError(f"folder is required for format={format!r}")
    if format == "binary_folder":
        storage = BinaryFolderStorage.create(folder, root, overwrite=overwrite)
    else:
        from .zarr_storage import ZarrStorage

        storage = ZarrStorage.create(folder, root, overwrite=overwrite)
    loaded = storage.load_root(load_recording=False)
    loaded.recording = root.recording
    return SortingAnalyzer(loaded, sparsity, storage)


def create_sorting_analyzer(sorting, recording, format: str = "memory", folder=None, sparse: bool = True,
                            sparsity=None, return_scaled: bool | None = None, overwrite: bool = False,
                            return_in_uV: bool | None = None, sparsity_kwargs: dict | None = None,
                            job_kwargs: dict | None = None, main_channel_indices=None,
                            **kwargs) -> SortingAnalyzer:
    """Pair a sorting with its recording in a new SortingAnalyzer.

    Parameters
    ----------
    sorting : BaseSorting
        The sorting (copied into the analyzer).
    recording : BaseRecording
        The recording the spikes come from (kept by reference / as provenance).
    format : "memory" | "binary_folder" | "zarr", default: "memory"
        Where the analyzer keeps its data.
    folder : str or Path or None, default: None
        The folder, for "binary_folder" and "zarr".
    sparse : bool, default: True
        Estimate a sparsity (``estimate_sparsity``, method "radius" with ``radius_um=100`` by default).
    sparsity : ChannelSparsity or None, default: None
        A sparsity to use (then ``sparse`` is ignored).
    return_scaled : bool, default: True
        Work in µV (when the recording has gains); alias ``return_in_uV``.
    overwrite : bool, default: False
        Replace an existing folder.
    sparsity_kwargs : dict or None, default: None
        Options of ``estimate_sparsity`` (they may also be given directly as keywords).
    job_kwargs : dict or None, default: None
        Job kwargs (they may also be given directly as keywords).
    main_channel_indices : array-like or None, default: None
        Each unit's main channel index. None: the sorting property "main_channel_id" when there is one,
        else the extremum channel (``peak_sign``, default "both") of the templates estimated for the
        sparsity, else (dense analyzer, given sparsity) ``estimate_main_channel_from_recording`` (one pass
        over 100 spikes per unit). As SpikeInterface 0.105.3, the analyzer's sorting keeps them as the
        property "main_channel_id" (saved with the sorting, ``sorting/properties/main_channel_id``).
    **kwargs
        Sparsity options and job kwargs.

    Returns
    -------
    sorting_analyzer : SortingAnalyzer
    """
    if return_in_uV is not None:
        if return_scaled is not None and bool(return_scaled) != bool(return_in_uV):
            raise ValueError("return_scaled and return_in_uV disagree; give one of them")
        return_scaled = return_in_uV
    return_scaled = True if return_scaled is None else bool(return_scaled)
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {list(_FORMATS)}, got {format!r}")
    if format != "memory" and folder is None:
        raise ValueError(f"folder is required for format={format!r}")
    if format != "memory" and Path(folder).exists() and not overwrite:
        raise FileExistsError(f"folder {folder} already exists; use overwrite=True to replace it")
    _check_pair(sorting, recording)
    specific, job = split_job_kwargs({**kwargs, **(job_kwargs or {})})
    specific.update(sparsity_kwargs or {})
    specific.pop("peak_mode", None)
    if return_scaled and not recording.has_scaleable_traces():
        return_scaled = False  # as SpikeInterface: unscaled recordings are analysed in their own units

    if main_channel_indices is not None:
        main_channel_indices = np.asarray(main_channel_indices, dtype=np.int64)
        if main_channel_indices.shape != (sorting.get_num_units(),):
            raise ValueError(f"main_channel_indices must have one entry per unit ({sorting.get_num_units()}), "
                             f"got shape {main_channel_indices.shape}")
        if main_channel_indices.size and (main_channel_indices.min() < 0
                                          or main_channel_indices.max() >= recording.get_num_channels()):
            raise ValueError(f"main_channel_indices must be channel indices in [0, {recording.get_num_channels()})")
    elif sorting.get_property("main_channel_id") is not None:
        main_channel_indices = _ids_to_channel_indices(np.asarray(recording.channel_ids),
                                                       sorting.get_property("main_channel_id"))

    if sparsity is not None:
        _check_sparsity(sparsity, sorting, recording)
    elif sparse:
        from ..sparsity import _estimate_sparsity_and_main

        specific.setdefault("peak_sign", "both")
        if main_channel_indices is not None:
            if specific.get("method", "radius") != "radius":
                raise ValueError("main channels are given (main_channel_indices or the sorting property "
                                 "'main_channel_id'): the sparsity method must be 'radius'")
            specific["main_channel_indices"] = main_channel_indices
        sparsity, estimated_main = _estimate_sparsity_and_main(sorting, recording, return_scaled=return_scaled,
                                                               **specific, **job)
        if main_channel_indices is None:
            main_channel_indices = estimated_main
    elif specific:
        raise ValueError(f"{sorted(specific)} are sparsity options, but sparse=False and no sparsity is given")
    if main_channel_indices is None:
        from ..template_tools import estimate_main_channel_from_recording

        main_channel_indices = np.asarray(estimate_main_channel_from_recording(
            recording, sorting, peak_sign="both", peak_mode="extremum", num_spikes_for_main_channel=100, **job),
            dtype=np.int64)

    # The analyzer's own copy of the sorting carries the main channels (the caller's sorting is untouched).
    from ..numpy_objects import NumpySorting

    sorting = NumpySorting.from_sorting(sorting, with_metadata=True)
    sorting.set_property("main_channel_id", np.asarray(recording.channel_ids)[main_channel_indices])

    root = AnalyzerRoot(sorting, recording, get_rec_attributes(recording),
                        recording.get_probegroup() if recording.has_probe() else None,
                        None if sparsity is None else np.asarray(sparsity.mask, dtype=bool),
                        {"return_in_uV": return_scaled, "peak_sign": "both", "peak_mode": "extremum"})
    return _new_analyzer(root, sparsity, format, folder, overwrite)


def _check_pair(sorting, recording) -> None:
    if not np.isclose(sorting.sampling_frequency, recording.sampling_frequency, rtol=0, atol=1e-6):
        raise ValueError(
            f"recording: sampling_frequency {recording.sampling_frequency} differs from the sorting's "
            f"{sorting.sampling_frequency}"
        )
    if sorting.get_num_segments() != recording.get_num_segments():
        raise ValueError(
            f"recording: has {recording.get_num_segments()} segments, the sorting {sorting.get_num_segments()}"
        )
    spikes = sorting.to_spike_vector(concatenated=False)
    for segment_index, segment_spikes in enumerate(spikes):
        num_samples = recording.get_num_samples(segment_index)
        if segment_spikes.size and int(segment_spikes["sample_index"].max()) >= num_samples:
            raise ValueError(
                f"sorting: segment {segment_index} has a spike at sample {int(segment_spikes['sample_index'].max())} "
                f"but the recording has {num_samples} samples"
            )


def _check_sparsity(sparsity, sorting, recording) -> None:
    if not np.array_equal(np.asarray(sparsity.unit_ids), sorting.unit_ids):
        raise ValueError("sparsity: its unit_ids differ from the sorting's unit_ids")
    if not np.array_equal(np.asarray(sparsity.channel_ids), recording.channel_ids):
        raise ValueError("sparsity: its channel_ids differ from the recording's channel_ids")


def load_sorting_analyzer(folder, load_extensions: bool = True, format: str = "auto") -> SortingAnalyzer:
    """Open a saved SortingAnalyzer (by sicore or SpikeInterface).

    Parameters
    ----------
    folder : str or Path
        The analyzer folder (binary_folder) or zarr store.
    load_extensions : bool, default: True
        Load every complete saved extension now (arrays memory-mapped); incomplete ones are reported
        with a warning and not loaded.
    format : "auto" | "binary_folder" | "zarr", default: "auto"
        Storage format; "auto" detects it.

    Returns
    -------
    sorting_analyzer : SortingAnalyzer
        Recordingless (with a warning) when the recording cannot be rebuilt from its provenance.
    """
    return load_analyzer_deferred(folder, load_extensions, format, deferred=False)


def load_analyzer_deferred(folder, load_extensions: bool = False, format: str = "auto",
                           deferred: bool = True) -> SortingAnalyzer:
    """``load_sorting_analyzer``; with ``deferred`` the recording and the probe group are read on first
    use (the ``sicore`` command's jobs that never touch them skip probeinterface's import and the
    recording's construction, and a recording that cannot be rebuilt warns only then)."""
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    if format == "auto":
        is_zarr = (folder / ".zgroup").is_file() or (folder / "zarr.json").is_file()
        format = "zarr" if is_zarr else "binary_folder"
    if format == "binary_folder":
        storage = BinaryFolderStorage(folder)
    elif format == "zarr":
        from .zarr_storage import ZarrStorage

        storage = ZarrStorage(folder)
    else:
        raise ValueError(f"format must be 'auto', 'binary_folder' or 'zarr', got {format!r}")
    root = storage.load_root(load_recording=True, deferred=deferred)
    sparsity = None
    if root.sparsity_mask is not None:
        from ..sparsity import ChannelSparsity

        sparsity = ChannelSparsity(root.sparsity_mask, root.sorting.unit_ids, root.rec_attributes["channel_ids"])
    analyzer = SortingAnalyzer(root, sparsity, storage)
    if load_extensions:
        analyzer.load_all_saved_extension()
    return analyzer


def _ids_to_channel_indices(channel_ids: np.ndarray, ids) -> np.ndarray:
    lookup = {cid: i for i, cid in enumerate(channel_ids.tolist())}
    try:
        return np.array([lookup[cid] for cid in np.asarray(ids).tolist()], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"sorting property 'main_channel_id': {err.args[0]!r} is not a channel id") from None
