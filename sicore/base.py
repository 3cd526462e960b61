"""BaseExtractor: ids, properties, annotations and JSON provenance shared by every sicore object."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .version import __version__

# name -> class of every sicore extractor imported so far (classes register in __init_subclass__).
_EXTRACTOR_REGISTRY: dict[str, type] = {}

# Class name -> the sicore module that defines it. ``import sicore`` is lazy, so a class may not be
# registered yet when a file names it: the loader then imports the module given here, and only a module
# given here (a file never makes sicore import a module it names). tests/test_public_api.py checks that this
# table equals the set of classes registered by importing every sicore module.
_EXTRACTOR_MODULES: dict[str, str] = {
    "ChannelsAggregationRecording": "sicore.aggregate",
    "UnitsAggregationSorting": "sicore.aggregate",
    "BaseEvent": "sicore.event",
    "NumpyEvent": "sicore.event",
    "MEArecRecordingExtractor": "sicore.extractors.mearec",
    "MEArecSortingExtractor": "sicore.extractors.mearec",
    "NeoBaseRecordingExtractor": "sicore.extractors.neo_recording",
    "OpenEphysBinaryRecordingExtractor": "sicore.extractors.openephys",
    "OpenEphysLegacyRecordingExtractor": "sicore.extractors.openephys",
    "BasePhyKilosortSortingExtractor": "sicore.extractors.phy_kilosort",
    "KiloSortSortingExtractor": "sicore.extractors.phy_kilosort",
    "PhySortingExtractor": "sicore.extractors.phy_kilosort",
    "SpikeGLXRecordingExtractor": "sicore.extractors.spikeglx",
    "InjectTemplatesRecording": "sicore.generate_injection",
    "NoiseGeneratorRecording": "sicore.generate_noise",
    "BinaryRecordingExtractor": "sicore.io.binary",
    "BinaryFolderRecording": "sicore.io.binary_folder",
    "NpzEventExtractor": "sicore.io.event_folder",
    "NpzFolderEvent": "sicore.io.event_folder",
    "NpzFolderSorting": "sicore.io.npz_sorting",
    "NpzSortingExtractor": "sicore.io.npz_sorting",
    "NumpyFolderSorting": "sicore.io.numpy_folder",
    "NpyFolderSnippets": "sicore.io.snippets_folder",
    "NpzFolderSnippets": "sicore.io.snippets_folder",
    "NpzSnippetsExtractor": "sicore.io.snippets_folder",
    "ZarrRecordingExtractor": "sicore.io.zarr_recording",
    "NumpyRecording": "sicore.numpy_objects",
    "NumpySorting": "sicore.numpy_objects",
    "SharedMemorySorting": "sicore.numpy_objects",
    "_SpikeVectorSorting": "sicore.numpy_objects",
    "BaseRecording": "sicore.recording",
    "ChannelSliceRecording": "sicore.recording",
    "FrameSliceRecording": "sicore.recording",
    "BaseRecordingSnippets": "sicore.recording_snippets",
    "AppendSegmentRecording": "sicore.segments",
    "AppendSegmentSorting": "sicore.segments",
    "ConcatenateSegmentRecording": "sicore.segments",
    "ConcatenateSegmentSorting": "sicore.segments",
    "SelectSegmentRecording": "sicore.segments",
    "SelectSegmentSorting": "sicore.segments",
    "BaseSnippets": "sicore.snippets",
    "ChannelSliceSnippets": "sicore.snippets",
    "FrameSliceSnippets": "sicore.snippets",
    "NumpySnippets": "sicore.snippets",
    "BaseSorting": "sicore.sorting",
    "FrameSliceSorting": "sicore.sorting",
    "UnitsSelectionSorting": "sicore.sorting",
}


def register_extractor_class(cls: type, *aliases: str) -> type:
    """Make ``cls`` loadable from provenance under its own name and optional ``aliases``."""
    _EXTRACTOR_REGISTRY[cls.__name__] = cls
    for alias in aliases:
        _EXTRACTOR_REGISTRY[alias] = cls
    return cls


def get_registered_class(class_name: str) -> type:
    """Resolve a provenance ``class`` string to a sicore class.

    Accepts ``"NumpyRecording"``, ``"sicore.numpy_objects.NumpyRecording"`` and SpikeInterface
    spellings (``"spikeinterface.core.binaryfolder.BinaryFolderRecording"``) of sicore classes. A class
    not imported yet is found through the static ``_EXTRACTOR_MODULES`` table: only sicore modules listed
    there are ever imported, never a module named by ``class_name``.

    Parameters
    ----------
    class_name : str
        The ``class`` entry of a provenance dict.

    Returns
    -------
    type
        The sicore class.
    """
    if not isinstance(class_name, str):
        raise ValueError(f"provenance 'class' must be a string, got {class_name!r}")
    short_name = class_name.rsplit(".", 1)[-1]
    for key in (class_name, short_name):
        if key in _EXTRACTOR_REGISTRY:
            return _EXTRACTOR_REGISTRY[key]
    module = _EXTRACTOR_MODULES.get(short_name)
    if module is not None:
        importlib.import_module(module)  # registers the class (a module of the static table, never the file's)
        if short_name in _EXTRACTOR_REGISTRY:
            return _EXTRACTOR_REGISTRY[short_name]
    known = sorted(set(_EXTRACTOR_MODULES) | {c.__name__ for c in _EXTRACTOR_REGISTRY.values()})
    raise ValueError(
        f"provenance names class {class_name!r}, which is not a registered sicore class; "
        f"sicore never imports modules named by files. Known classes: {known}"
    )


def _normalize_ids(ids: Iterable) -> np.ndarray:
    ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {ids.shape}")
    if ids.dtype.kind == "O":
        ids = ids.astype(str)
    return ids


class BaseExtractor:
    """Common base of recordings, sortings, events and snippets.

    Holds the main ids (channels or units), per-id properties, free annotations and the
    constructor kwargs that make the object's JSON provenance (``to_dict``).

    Parameters
    ----------
    main_ids : array-like
        Channel ids for recordings/snippets/events, unit ids for sortings. Must be unique.
    """

    # Constructor kwargs holding file or folder paths (stored relative when asked).
    _path_kwargs: tuple[str, ...] = ()
    # Whether to_dict() gives JSON that rebuilds the object (False for in-memory objects).
    _json_serializable: bool = True
    _main_annotations: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_extractor_class(cls)

    def __init__(self, main_ids: Iterable):
        self._main_ids = _normalize_ids(main_ids)
        if np.unique(self._main_ids).size != self._main_ids.size:
            raise ValueError(f"ids must be unique, got duplicates in {self._main_ids.tolist()}")
        self._annotations: dict[str, Any] = {}
        self._properties: dict[str, np.ndarray] = {}
        self._kwargs: dict[str, Any] = {}
        self._id_to_index: dict | None = None

    # ------------------------------------------------------------------ ids
    def _main_ids_to_indices(self, ids, argument: str = "ids") -> np.ndarray:
        """Indices of ``ids`` in the main ids; a KeyError names any unknown id."""
        if self._id_to_index is None:
            self._id_to_index = {k: i for i, k in enumerate(self._main_ids.tolist())}
        ids = np.atleast_1d(np.asarray(ids))
        if ids.dtype.kind == "O":
            ids = ids.astype(self._main_ids.dtype)
        try:
            return np.fromiter((self._id_to_index[k] for k in ids.tolist()), dtype=np.int64, count=ids.size)
        except KeyError as err:
            raise KeyError(
                f"{argument}: {err.args[0]!r} is not among the ids of this object "
                f"({self._main_ids[:20].tolist()}{' ...' if self._main_ids.size > 20 else ''})"
            ) from None

    def _main_id_to_index(self, main_id, argument: str = "id") -> int:
        return int(self._main_ids_to_indices([main_id], argument)[0])

    # ------------------------------------------------------------ segments
    def get_num_segments(self) -> int:
        raise NotImplementedError

    def _check_segment_index(self, segment_index: int | None) -> int:
        """The segment index to use; None is allowed only for mono-segment objects."""
        num_segments = self.get_num_segments()
        if segment_index is None:
            if num_segments == 1:
                return 0
            raise ValueError(f"segment_index is required: this object has {num_segments} segments")
        if isinstance(segment_index, bool) or not isinstance(segment_index, (int, np.integer)):
            raise ValueError(f"segment_index must be an int, got {segment_index!r}")
        if not 0 <= segment_index < num_segments:
            raise ValueError(f"segment_index {segment_index} is out of range: this object has {num_segments} segments")
        return int(segment_index)

    # ---------------------------------------------------------- annotations
    def annotate(self, **annotations) -> None:
        """Add or overwrite annotations (free key/value metadata)."""
        self._annotations.update(annotations)

    def set_annotation(self, annotation_key: str, value: Any, overwrite: bool = True) -> None:
        """Set one annotation; with ``overwrite=False`` an existing key is an error."""
        if not overwrite and annotation_key in self._annotations:
            raise ValueError(f"annotation_key {annotation_key!r} already set and overwrite=False")
        self._annotations[annotation_key] = value

    def get_annotation(self, key: str, copy: bool = True) -> Any:
        """Value of the annotation ``key`` (a deep copy unless ``copy=False``)."""
        if key not in self._annotations:
            raise KeyError(f"key {key!r} is not an annotation; available: {list(self._annotations)}")
        value = self._annotations[key]
        return _deepcopy(value) if copy else value

    def get_annotation_keys(self) -> list[str]:
        return list(self._annotations.keys())

    # ----------------------------------------------------------- properties
    def set_property(self, key: str, values, ids=None, missing_value=None) -> None:
        """Set a per-id property.

        Parameters
        ----------
        key : str
            Property name.
        values : array-like
            One value per id (all ids, or the ``ids`` given).
        ids : array-like or None, default: None
            Subset of ids that ``values`` refer to; the other ids get ``missing_value``
            (or keep their current value if the property exists).
        missing_value : object or None, default: None
            Fill value for ids not in ``ids`` when the property is new. Required for
            integer/bool properties; NaN / "" are used for float / string ones.
        """
        if values is None:
            self._properties.pop(key, None)
            return
        values = np.asarray(values)
        if values.ndim == 0:
            raise ValueError(f"values of property {key!r} must be an array with one value per id")
        num_ids = self._main_ids.size
        if ids is None:
            if values.shape[0] != num_ids:
                raise ValueError(
                    f"values of property {key!r} has {values.shape[0]} entries, expected one per id ({num_ids})"
                )
            self._properties[key] = values
            return
        indices = self._main_ids_to_indices(ids, "ids")
        if values.shape[0] != indices.size:
            raise ValueError(f"values of property {key!r} has {values.shape[0]} entries for {indices.size} ids")
        if key in self._properties:
            current = self._properties[key]
            new = current.astype(np.result_type(current, values), copy=True)
        else:
            if missing_value is None:
                missing_value = _default_missing_value(values.dtype, key)
            new = np.empty((num_ids,) + values.shape[1:], dtype=np.result_type(values, np.asarray(missing_value)))
            new[...] = missing_value
        new[indices] = values
        self._properties[key] = new

    def get_property(self, key: str, ids=None) -> np.ndarray | None:
        """Values of property ``key`` for all ids (or ``ids``); None when the property is not set."""
        values = self._properties.get(key, None)
        if values is None or ids is None:
            return values
        return values[self._main_ids_to_indices(ids, "ids")]

    def get_property_keys(self) -> list[str]:
        return list(self._properties.keys())

    def delete_property(self, key: str) -> None:
        if key not in self._properties:
            raise KeyError(f"property {key!r} is not set; available: {list(self._properties)}")
        del self._properties[key]

    def copy_metadata(self, other: "BaseExtractor", only_main: bool = False, ids=None) -> None:
        """Copy annotations and properties of ``self`` onto ``other``.

        ``ids`` selects (and orders) the ids of ``self`` that ``other`` holds; by default all.
        With ``only_main`` only the class's main annotations are copied.
        """
        indices = slice(None) if ids is None else self._main_ids_to_indices(ids)
        if only_main:
            annotations = {k: self._annotations[k] for k in self._main_annotations if k in self._annotations}
        else:
            annotations = self._annotations
        other._annotations.update(_deepcopy(annotations))
        for key, values in self._properties.items():
            other._properties[key] = values[indices]

    # ----------------------------------------------------------- provenance
    def is_json_serializable(self) -> bool:
        """True when ``to_dict()`` gives JSON that rebuilds this object (recursively)."""
        if not self._json_serializable:
            return False
        return all(_kwarg_is_serializable(v) for v in self._kwargs.values())

    def to_dict(
        self,
        include_annotations: bool = False,
        include_properties: bool = False,
        relative_to: str | Path | None = None,
        recursive: bool = True,
    ) -> dict:
        """JSON-friendly description that rebuilds the object with ``load_extractor``.

        Parameters
        ----------
        include_annotations : bool, default: False
            Also store the annotations.
        include_properties : bool, default: False
            Also store the properties (as lists).
        relative_to : str or Path or None, default: None
            Store file paths relative to this folder (``relative_paths: true``).
        recursive : bool, default: True
            Describe nested extractors (parents of views) as dicts too.
        """
        kwargs = {}
        for name, value in self._kwargs.items():
            kwargs[name] = _kwarg_to_dict(value, recursive, relative_to, include_annotations, include_properties)
            if name in self._path_kwargs and value is not None:
                kwargs[name] = _transform_paths(value, relative_to)
        d = {
            "class": f"sicore.{type(self).__name__}",
            "module": "sicore",
            "version": __version__,
            "kwargs": kwargs,
            "relative_paths": relative_to is not None,
        }
        if include_annotations:
            d["annotations"] = _jsonify(self._annotations)
        if include_properties:
            d["properties"] = {k: _jsonify(v) for k, v in self._properties.items()}
        return d

    @staticmethod
    def from_dict(d: dict, base_folder: str | Path | None = None) -> "BaseExtractor":
        """Rebuild an object from ``to_dict()`` output; only registered sicore classes are instantiated."""
        if not isinstance(d, dict) or "class" not in d or "kwargs" not in d:
            raise ValueError("an extractor dict needs 'class' and 'kwargs' keys")
        cls = get_registered_class(d["class"])
        relative = bool(d.get("relative_paths", False))
        if relative and base_folder is None:
            raise ValueError("this dict stores relative paths: give base_folder, the folder they are relative to")
        kwargs = {}
        for name, value in d["kwargs"].items():
            if name in getattr(cls, "_path_kwargs", ()) and value is not None:
                kwargs[name] = _resolve_paths(value, base_folder if relative else None)
            else:
                kwargs[name] = _kwarg_from_dict(value, base_folder)
        obj = cls._from_kwargs(**kwargs) if hasattr(cls, "_from_kwargs") else cls(**kwargs)
        for key, value in (d.get("annotations") or {}).items():
            obj._annotations[key] = value
        for key, value in (d.get("properties") or {}).items():
            if value is not None:
                obj.set_property(key, _property_from_json(value))
        return obj

    def clone(self) -> "BaseExtractor":
        """A new object of the same class from the same kwargs, with this object's metadata."""
        obj = type(self)(**self._kwargs)
        self.copy_metadata(obj)
        return obj

    def __reduce_ex__(self, protocol):
        # File-backed objects travel between processes as their provenance (small JSON), never as
        # pickled arrays; in-memory objects fall back to ordinary pickling of their state.
        if self.is_json_serializable():
            return (_rebuild_from_dict, (self.to_dict(include_annotations=True, include_properties=True),))
        return object.__reduce_ex__(self, protocol)


def resolve_id_selection(parent: BaseExtractor, ids, renamed_ids, kind: str):
    """Validate a view's id selection on ``parent``.

    Returns ``(ids, parent_indices, new_ids)``: the selected parent ids (all when None), their indices
    in the parent, and the ids of the view (``renamed_ids`` when given).
    """
    ids = parent._main_ids if ids is None else np.atleast_1d(np.asarray(ids))
    parent_indices = parent._main_ids_to_indices(ids, f"{kind}_ids")
    if renamed_ids is None:
        return ids, parent_indices, ids
    renamed_ids = np.atleast_1d(np.asarray(renamed_ids))
    if renamed_ids.size != ids.size:
        raise ValueError(f"renamed_{kind}_ids has {renamed_ids.size} ids for {ids.size} {kind}_ids")
    return ids, parent_indices, renamed_ids


def _rebuild_from_dict(d: dict) -> BaseExtractor:
    return BaseExtractor.from_dict(d)


def _deepcopy(value):
    return copy.deepcopy(value)


def _default_missing_value(dtype: np.dtype, key: str):
    if dtype.kind == "f":
        return np.nan
    if dtype.kind in "US":
        return ""
    if dtype.kind == "c":
        return complex(np.nan, np.nan)
    if dtype.kind == "O":
        return None
    raise ValueError(
        f"property {key!r} of dtype {dtype} is new and only set for some ids: give missing_value for the others"
    )


def _kwarg_is_serializable(value) -> bool:
    if isinstance(value, BaseExtractor):
        return value.is_json_serializable()
    if isinstance(value, (list, tuple)):
        return all(_kwarg_is_serializable(v) for v in value)
    if isinstance(value, dict):
        return all(_kwarg_is_serializable(v) for v in value.values())
    return True


def _kwarg_to_dict(value, recursive, relative_to, include_annotations, include_properties):
    if isinstance(value, BaseExtractor):
        if not recursive:
            return value
        return value.to_dict(
            include_annotations=include_annotations,
            include_properties=include_properties,
            relative_to=relative_to,
        )
    if isinstance(value, (list, tuple)):
        return [_kwarg_to_dict(v, recursive, relative_to, include_annotations, include_properties) for v in value]
    if isinstance(value, dict):
        return {k: _kwarg_to_dict(v, recursive, relative_to, include_annotations, include_properties) for k, v in value.items()}
    return _jsonify(value)


def _is_extractor_dict(value) -> bool:
    return isinstance(value, dict) and "class" in value and "kwargs" in value and "module" in value


def _kwarg_from_dict(value, base_folder):
    if _is_extractor_dict(value):
        return BaseExtractor.from_dict(value, base_folder)
    if isinstance(value, list):
        return [_kwarg_from_dict(v, base_folder) for v in value]
    if isinstance(value, dict):
        return {k: _kwarg_from_dict(v, base_folder) for k, v in value.items()}
    return value


def _transform_paths(value, relative_to):
    if isinstance(value, (list, tuple)):
        return [_transform_paths(v, relative_to) for v in value]
    path = Path(value).absolute()
    if relative_to is None:
        return str(path)
    return Path(_relpath(path, Path(relative_to).absolute())).as_posix()


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path, start)


def _resolve_paths(value, base_folder):
    if isinstance(value, (list, tuple)):
        return [_resolve_paths(v, base_folder) for v in value]
    if base_folder is None:
        return str(Path(value))
    return str((Path(base_folder) / value).resolve())


def _jsonify(value):
    """Convert numpy scalars/arrays (recursively) to plain JSON types."""
    if isinstance(value, np.ndarray):
        if value.dtype.names is not None:
            return {"__structured__": True, "dtype": value.dtype.descr, "data": [_jsonify(list(r)) for r in value]}
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonify(v) for v in value]
    return value


def _property_from_json(value):
    if isinstance(value, dict) and value.get("__structured__"):
        dtype = np.dtype([tuple(field) for field in value["dtype"]])
        return np.array([tuple(r) for r in value["data"]], dtype=dtype)
    return np.asarray(value)
