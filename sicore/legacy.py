"""The legacy ``WaveformExtractor`` API on top of the SortingAnalyzer.

``extract_waveforms`` builds a SortingAnalyzer (``random_spikes``, ``waveforms``, ``templates`` and
``noise_levels``, as SpikeInterface 0.105.3 does) and wraps it in a ``MockWaveformExtractor``;
``load_waveforms`` reopens such a folder. A legacy folder *is* a SortingAnalyzer folder (binary_folder
or zarr), so SpikeInterface's ``load_waveforms`` / ``load_sorting_analyzer`` read sicore's folders and
sicore reads SpikeInterface's. Folders are written atomically: built as a hidden temporary sibling
and renamed into place, so a failed or killed extraction leaves the previous folder (or none).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .analyzer.analyzer import SortingAnalyzer, create_sorting_analyzer
from .analyzer.storage import BinaryFolderStorage
from .io.atomic import atomic_folder
from .io.safe_files import read_json, write_json
from .job import split_job_kwargs

__all__ = ["extract_waveforms", "load_waveforms", "MockWaveformExtractor"]

# options of estimate_sparsity that extract_waveforms passes through (SpikeInterface's sparsity kwargs)
_SPARSITY_KWARGS = ("method", "peak_sign", "radius_um", "num_channels", "threshold", "amplitude_mode",
                    "by_property", "noise_levels", "main_channel_indices")
_TEMPLATE_MODES = ("average", "std", "median", "percentile")
_SAMPLED_INDEX_DTYPE = np.dtype([("spike_index", "int64"), ("segment_index", "int64")])


class FolderExistsError(FileExistsError, ValueError):
    """The target folder exists (a FileExistsError, and a ValueError as SpikeInterface raises)."""


# ----------------------------------------------------------------------------------- extract / load
def extract_waveforms(
    recording,
    sorting,
    folder=None,
    mode: str = "folder",
    precompute_template: Sequence | None = ("average",),
    ms_before: float = 1.0,
    ms_after: float = 2.0,
    max_spikes_per_unit: int | None = 500,
    overwrite: bool | None = None,
    return_scaled: bool = True,
    dtype=None,
    sparse: bool = True,
    sparsity=None,
    sparsity_temp_folder=None,
    num_spikes_for_sparsity: int = 100,
    unit_batch_size: int | None = None,
    allow_unfiltered: bool | None = None,
    use_relative_path: bool | None = None,
    seed: int | None = None,
    load_if_exists: bool | None = None,
    **kwargs,
) -> "MockWaveformExtractor":
    """Extract waveforms and templates of every unit (the legacy API, built on a SortingAnalyzer).

    Parameters
    ----------
    recording : BaseRecording
        The recording.
    sorting : BaseSorting
        The sorting.
    folder : str or Path or None, default: None
        Folder of the result (``mode="folder"``); None keeps everything in memory.
    mode : "folder" | "memory", default: "folder"
        "folder": a SortingAnalyzer ``binary_folder`` at ``folder``; "memory": nothing written.
    precompute_template : sequence or None, default: ("average",)
        Template modes computed now: "average", "std", "median", ("percentile", q).
    ms_before : float, default: 1.0
        Milliseconds before each spike.
    ms_after : float, default: 2.0
        Milliseconds after each spike.
    max_spikes_per_unit : int or None, default: 500
        Random spikes per unit; None takes every spike.
    overwrite : bool or None, default: None
        Replace an existing ``folder`` (replaced only once the new one is complete); otherwise an
        existing folder is an error.
    return_scaled : bool, default: True
        Waveforms in µV (float32) when the recording has gains.
    dtype : numpy dtype or None, default: None
        Dtype of the waveforms (float32 when scaled, else the recording's dtype).
    sparse : bool, default: True
        Estimate a sparsity (``estimate_sparsity``; options ``method``, ``radius_um``, ``num_channels``,
        ``peak_sign``, ``threshold``... given as keywords).
    sparsity : ChannelSparsity or None, default: None
        A sparsity to use (``sparse`` is then ignored).
    sparsity_temp_folder : None, default: None
        Accepted for compatibility; the sparsity is estimated without temporary files.
    num_spikes_for_sparsity : int, default: 100
        Random spikes per unit used to estimate the sparsity.
    unit_batch_size : None, default: None
        Accepted for compatibility (all units are extracted in one pass).
    allow_unfiltered : bool or None, default: None
        Accepted for compatibility (unfiltered recordings are allowed, as in SpikeInterface 0.105.3).
    use_relative_path : bool or None, default: None
        True: the recording's path is stored relative to ``folder``, so a parent folder holding both can
        be moved. False/None: absolute, so ``folder`` can be moved alone. The sorting is always copied
        into ``folder``.
    seed : int or None, default: None
        Seed of the random spike selection (and of the noise-level chunks).
    load_if_exists : bool or None, default: None
        Load ``folder`` instead of extracting when it exists.
    **kwargs
        Sparsity options (see ``sparse``) and job kwargs (``n_jobs``, ``chunk_duration``, ``progress_bar``...).

    Returns
    -------
    we : MockWaveformExtractor
    """
    del sparsity_temp_folder, unit_batch_size, allow_unfiltered  # compatibility only
    if mode not in ("folder", "memory"):
        raise ValueError(f"mode must be 'folder' or 'memory', got {mode!r}")
    if overwrite and load_if_exists:
        raise ValueError("overwrite=True and load_if_exists=True exclude each other; give one of them")
    sparsity_kwargs, job_kwargs = split_job_kwargs(kwargs)
    unknown = sorted(k for k in sparsity_kwargs if k not in _SPARSITY_KWARGS)
    if unknown:
        raise TypeError(f"extract_waveforms() got unexpected keyword arguments {unknown}; the extra keywords are "
                        f"sparsity options {list(_SPARSITY_KWARGS)} and job kwargs")
    operators = _template_operators(precompute_template, "precompute_template")
    if mode == "memory" and folder is not None:
        warnings.warn("mode='memory': folder is ignored (nothing is written)")
        folder = None

    analyzer_kwargs = dict(sparse=sparse, sparsity=sparsity, return_scaled=return_scaled, **job_kwargs)
    if sparse and sparsity is None:
        analyzer_kwargs.update(sparsity_kwargs, num_spikes_for_sparsity=num_spikes_for_sparsity)
    elif sparsity_kwargs:
        analyzer_kwargs.update(sparsity_kwargs)  # create_sorting_analyzer names them in its error

    def compute(analyzer: SortingAnalyzer) -> None:
        if max_spikes_per_unit is None:
            analyzer.compute("random_spikes", method="all", seed=seed)
        else:
            analyzer.compute("random_spikes", method="uniform", max_spikes_per_unit=max_spikes_per_unit, seed=seed)
        analyzer.compute("waveforms", ms_before=ms_before, ms_after=ms_after, dtype=dtype, **job_kwargs)
        if operators:
            analyzer.compute("templates", operators=operators)
        analyzer.compute("noise_levels", seed=seed, **job_kwargs)

    if folder is None:
        analyzer = create_sorting_analyzer(sorting, recording, format="memory", **analyzer_kwargs)
        compute(analyzer)
        return MockWaveformExtractor(analyzer)

    final = Path(os.path.abspath(folder))
    if final.exists():
        if load_if_exists:
            return MockWaveformExtractor(_open_analyzer(final, recording=recording))
        if not overwrite:
            raise FolderExistsError(
                f"folder {final} already exists; use overwrite=True to replace it (or load_if_exists=True)"
            )

    def build(tmp: Path) -> None:
        analyzer = create_sorting_analyzer(sorting, recording, format="binary_folder", folder=tmp,
                                           **analyzer_kwargs)
        compute(analyzer)
        _set_recording_paths(tmp, "binary_folder", relative=bool(use_relative_path))

    _write_folder_atomically(final, bool(overwrite), build)
    return MockWaveformExtractor(_open_analyzer(final, recording=recording))


def load_waveforms(folder, with_recording: bool = True, sorting=None, output: str = "MockWaveformExtractor"):
    """Load waveforms saved by ``extract_waveforms`` / ``MockWaveformExtractor.save`` (sicore or SpikeInterface).

    Parameters
    ----------
    folder : str or Path
        A SortingAnalyzer folder (binary_folder) or zarr store, as written by ``extract_waveforms``.
    with_recording : bool, default: True
        Rebuild the recording from its provenance (with a warning and recordingless when that fails);
        False never touches the recording.
    sorting : BaseSorting or None, default: None
        A sorting to use instead of the folder's copy; it must have the same units and spikes.
    output : "MockWaveformExtractor" | "SortingAnalyzer", default: "MockWaveformExtractor"
        What to return.

    Returns
    -------
    we : MockWaveformExtractor or SortingAnalyzer
    """
    if output not in ("MockWaveformExtractor", "SortingAnalyzer"):
        raise ValueError(f"output must be 'MockWaveformExtractor' or 'SortingAnalyzer', got {output!r}")
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    analyzer = _open_analyzer(folder, load_recording=bool(with_recording), sorting=sorting)
    return analyzer if output == "SortingAnalyzer" else MockWaveformExtractor(analyzer)


# ----------------------------------------------------------------------------------- the legacy object
class MockWaveformExtractor:
    """The legacy ``WaveformExtractor`` interface, answered by a SortingAnalyzer.

    Parameters
    ----------
    sorting_analyzer : SortingAnalyzer
        The analyzer; it needs the ``random_spikes`` extension, and ``waveforms`` for ``get_waveforms``.

    Notes
    -----
    Template tools and ``compute_sparsity`` accept this object (they use ``sorting_analyzer``).
    """

    def __init__(self, sorting_analyzer: SortingAnalyzer):
        if not isinstance(sorting_analyzer, SortingAnalyzer):
            raise TypeError(f"sorting_analyzer must be a SortingAnalyzer, got {type(sorting_analyzer).__name__}")
        self.sorting_analyzer = sorting_analyzer

    def __repr__(self) -> str:
        text = repr(self.sorting_analyzer).removeprefix("SortingAnalyzer: ")
        return f"MockWaveformExtractor: mock the old WaveformExtractor with SortingAnalyzer: {text}"

    # ------------------------------------------------------------- pass-through getters
    @property
    def recording(self):
        return self.sorting_analyzer.recording

    @property
    def sorting(self):
        return self.sorting_analyzer.sorting

    @property
    def unit_ids(self) -> np.ndarray:
        return self.sorting_analyzer.unit_ids

    @property
    def channel_ids(self) -> np.ndarray:
        return self.sorting_analyzer.channel_ids

    @property
    def sampling_frequency(self) -> float:
        return self.sorting_analyzer.sampling_frequency

    @property
    def sparsity(self):
        return self.sorting_analyzer.sparsity

    @property
    def return_scaled(self) -> bool:
        return self.sorting_analyzer.return_scaled

    @property
    def folder(self) -> Path | None:
        return self.sorting_analyzer.folder

    @property
    def format(self) -> str:
        """The storage format, with the legacy names: "binary", "zarr" or "memory"."""
        fmt = self.sorting_analyzer.format
        return "binary" if fmt == "binary_folder" else fmt

    def is_sparse(self) -> bool:
        return self.sorting_analyzer.is_sparse()

    def has_recording(self) -> bool:
        return self.sorting_analyzer.has_recording() or self.sorting_analyzer.has_temporary_recording()

    def is_read_only(self) -> bool:
        return self.folder is not None and not os.access(self.folder, os.W_OK)

    def get_num_units(self) -> int:
        return self.sorting_analyzer.get_num_units()

    def get_num_channels(self) -> int:
        return self.sorting_analyzer.get_num_channels()

    def get_num_segments(self) -> int:
        return self.sorting_analyzer.get_num_segments()

    def get_num_samples(self, segment_index: int | None = None) -> int:
        return self.sorting_analyzer.get_num_samples(segment_index)

    def get_total_samples(self) -> int:
        return self.sorting_analyzer.get_total_samples()

    def get_total_duration(self) -> float:
        return self.sorting_analyzer.get_total_duration()

    def get_probegroup(self):
        return self.sorting_analyzer.get_probegroup()

    def get_probe(self):
        return self.sorting_analyzer.get_probe()

    def is_filtered(self) -> bool:
        return self.sorting_analyzer.is_filtered()

    def get_channel_locations(self) -> np.ndarray:
        return self.sorting_analyzer.get_channel_locations()

    def channel_ids_to_indices(self, channel_ids) -> np.ndarray:
        return self.sorting_analyzer.channel_ids_to_indices(channel_ids)

    def get_recording_property(self, key: str):
        return self.sorting_analyzer.get_recording_property(key)

    def get_sorting_property(self, key: str):
        return self.sorting_analyzer.get_sorting_property(key)

    # ------------------------------------------------------------------- extensions
    def get_available_extension_names(self) -> list[str]:
        analyzer = self.sorting_analyzer
        return [name for name in analyzer.get_computable_extensions() if analyzer.has_extension(name)]

    def has_extension(self, extension_name: str) -> bool:
        return self.sorting_analyzer.has_extension(extension_name)

    def load_extension(self, extension_name: str):
        """The analyzer's extension ``extension_name`` (an error when it is not computed)."""
        extension = self.sorting_analyzer.get_extension(extension_name)
        if extension is None:
            raise ValueError(f"extension_name {extension_name!r} is not computed")
        return extension

    def delete_extension(self, extension) -> None:
        self.sorting_analyzer.delete_extension(extension)

    def has_waveforms(self) -> bool:
        return self.sorting_analyzer.has_extension("waveforms")

    def delete_waveforms(self) -> None:
        """Delete the waveforms (in memory and on disk); templates already computed stay."""
        self.sorting_analyzer.delete_extension("waveforms")

    # ------------------------------------------------------------------- window
    def _window_extension(self):
        for name in ("waveforms", "templates"):
            extension = self.sorting_analyzer.get_extension(name)
            if extension is not None:
                return extension
        raise ValueError("neither waveforms nor templates are computed: the waveform window is unknown")

    @property
    def nbefore(self) -> int:
        return self._window_extension().nbefore

    @property
    def nafter(self) -> int:
        return self._window_extension().nafter

    @property
    def nsamples(self) -> int:
        return self.nbefore + self.nafter

    @property
    def dtype(self) -> np.dtype:
        """Dtype of the waveforms."""
        extension = self.sorting_analyzer.get_extension("waveforms")
        if extension is not None:
            return np.dtype(extension.params["dtype"])
        return np.dtype(np.float32) if self.return_scaled else self.sorting_analyzer.get_dtype()

    # ------------------------------------------------------------------- waveforms
    def _unit_index(self, unit_id) -> int:
        if unit_id not in set(self.unit_ids.tolist()):
            raise ValueError(f"unit_id {unit_id!r} is not a unit of this waveform extractor")
        return int(self.sorting.id_to_index(unit_id))

    def get_sampled_indices(self, unit_id) -> np.ndarray:
        """Which spikes of ``unit_id`` were sampled: ``spike_index`` (position in the unit's spike train
        of ``segment_index``) and ``segment_index``, in the order of ``get_waveforms``."""
        unit_index = self._unit_index(unit_id)
        extension = self.sorting_analyzer.get_extension("random_spikes")
        if extension is None:
            raise ValueError("the random_spikes extension is not computed")
        spikes = self.sorting.to_spike_vector()
        selected = np.asarray(extension.data["random_spikes_indices"], dtype=np.int64)
        in_unit = spikes["unit_index"] == unit_index
        unit_positions = np.flatnonzero(in_unit)  # the unit's spikes, by segment then time
        chosen = selected[in_unit[selected]]
        rank = np.searchsorted(unit_positions, chosen)
        segments = spikes["segment_index"][chosen].astype(np.int64)
        segment_start = np.searchsorted(spikes["segment_index"][unit_positions], segments, side="left")
        sampled = np.zeros(chosen.size, dtype=_SAMPLED_INDEX_DTYPE)
        sampled["spike_index"] = rank - segment_start
        sampled["segment_index"] = segments
        return sampled

    def get_waveforms(self, unit_id, with_index: bool = False, cache: bool = False, lazy: bool = True,
                      sparsity=None, force_dense: bool = False):
        """Waveforms ``(num_sampled_spikes, nsamples, num_channels)`` of one unit.

        Parameters
        ----------
        unit_id : int or str
            The unit.
        with_index : bool, default: False
            Also return ``get_sampled_indices(unit_id)``.
        cache : bool, default: False
            Accepted for compatibility (the analyzer holds the data).
        lazy : bool, default: True
            Accepted for compatibility (saved waveforms are memory-mapped; the unit's rows are copied).
        sparsity : ChannelSparsity or None, default: None
            Keep only its channels of the unit (on a sparse extractor they must be among the unit's channels).
        force_dense : bool, default: False
            All channels (zeros outside the unit's sparse channels).

        Returns
        -------
        waveforms : np.ndarray
            The unit's sparse channels (in channel order) when sparse, all channels otherwise.
        sampled_index : np.ndarray
            Only with ``with_index``.
        """
        del cache, lazy
        unit_index = self._unit_index(unit_id)
        extension = self.sorting_analyzer.get_extension("waveforms")
        if extension is None:
            raise ValueError("the waveforms are not computed (or were deleted with delete_waveforms())")
        dense = sparsity is not None or force_dense
        waveforms = extension.get_waveforms_one_unit(unit_id, force_dense=dense)
        if sparsity is not None and not force_dense:
            waveforms = waveforms[:, :, self._requested_channels(sparsity, unit_index)]
        if with_index:
            return waveforms, self.get_sampled_indices(unit_id)
        return waveforms

    def _requested_channels(self, sparsity, unit_index: int) -> np.ndarray:
        """Channel indices of ``sparsity`` for a unit; they must be available on a sparse extractor."""
        mask = np.asarray(getattr(sparsity, "mask", None))
        if mask.shape != (self.get_num_units(), self.get_num_channels()):
            raise ValueError(f"sparsity: expected a ChannelSparsity with mask shape "
                             f"{(self.get_num_units(), self.get_num_channels())}, got {mask.shape}")
        wanted = np.flatnonzero(mask[unit_index])
        if self.is_sparse():
            available = self.sorting_analyzer.sparsity_mask[unit_index]
            if not available[wanted].all():
                raise ValueError("sparsity: the waveforms are already sparse and it asks for channels outside "
                                 f"unit {self.unit_ids[unit_index]!r}'s sparse channels")
        return wanted

    # ------------------------------------------------------------------- templates
    def get_all_templates(self, unit_ids=None, mode: str = "average", percentile: float | None = None) -> np.ndarray:
        """Dense templates ``(num_units, nsamples, num_channels)``.

        A mode that was not precomputed is computed from the waveforms (kept in memory, not saved).

        Parameters
        ----------
        unit_ids : array-like or None, default: None
            Units, in the order wanted (all when None).
        mode : "average" | "std" | "median" | "percentile", default: "average"
            Statistic over the sampled waveforms.
        percentile : float or None, default: None
            The percentile, for ``mode="percentile"``.
        """
        key = _template_key(mode, percentile)
        analyzer = self.sorting_analyzer
        extension = analyzer.get_extension("templates")
        if extension is None or key not in extension.data:
            if not analyzer.has_extension("waveforms"):
                raise ValueError(f"mode {key!r} was not precomputed and the waveforms are deleted; "
                                 "use precompute_templates() before delete_waveforms()")
            if extension is None:
                operator = ("percentile", percentile) if mode == "percentile" else mode
                extension = analyzer.compute_one_extension("templates", save=False, operators=[operator])
        templates = np.asarray(extension.get_data(operator=mode, percentile=percentile))
        if unit_ids is None:
            return templates
        return templates[[self._unit_index(u) for u in unit_ids]]

    def get_template(self, unit_id, mode: str = "average", sparsity=None, force_dense: bool = False,
                     percentile: float | None = None) -> np.ndarray:
        """Template ``(nsamples, channels)`` of one unit.

        Parameters
        ----------
        unit_id : int or str
            The unit.
        mode : "average" | "std" | "median" | "percentile", default: "average"
            Statistic over the sampled waveforms.
        sparsity : ChannelSparsity or None, default: None
            Keep only its channels of the unit.
        force_dense : bool, default: False
            All channels (zeros outside the unit's sparse channels).
        percentile : float or None, default: None
            The percentile, for ``mode="percentile"``.

        Returns
        -------
        template : np.ndarray
            As ``get_waveforms``: the unit's sparse channels when sparse, all channels otherwise.
        """
        unit_index = self._unit_index(unit_id)
        template = self.get_all_templates(mode=mode, percentile=percentile)[unit_index]
        if force_dense:
            return template
        if sparsity is not None:
            return template[:, self._requested_channels(sparsity, unit_index)]
        if self.is_sparse():
            return template[:, self.sorting_analyzer.sparsity_mask[unit_index]]
        return template

    def precompute_templates(self, modes: Sequence | None = None, percentile: float | None = None) -> None:
        """Compute and keep (saved with the extractor) templates of several modes.

        Parameters
        ----------
        modes : sequence or None, default: None
            Any of "average", "std", "median", "percentile" (with ``percentile``), ("percentile", q).
            None: "average", "std", "median", and "percentile" when ``percentile`` is given.
        percentile : float or None, default: None
            The percentile of the "percentile" mode.
        """
        if modes is None:
            modes = ["average", "std", "median"] + (["percentile"] if percentile is not None else [])
        if isinstance(modes, str):
            modes = [modes]
        modes = [("percentile", percentile) if m == "percentile" else m for m in modes]
        if any(isinstance(m, tuple) and m[1] is None for m in modes):
            raise ValueError("percentile is required with modes=['percentile', ...]")
        operators = _template_operators(modes, "modes")
        analyzer = self.sorting_analyzer
        extension = analyzer.get_extension("templates")
        if extension is None:
            analyzer.compute("templates", operators=operators)
            return
        from .analyzer.core_extensions import _operator_key

        # data may hold modes computed on the fly by a getter (in memory only): params say what is kept
        kept = {_operator_key(op) for op in extension.params["operators"]}
        missing = [op for op in operators if _operator_key(op) not in kept]
        if not missing:
            return
        if not analyzer.has_extension("waveforms"):
            raise ValueError(f"modes {missing} were not precomputed and the waveforms are deleted")
        # added to the existing extension (a recompute would delete the extensions that depend on it)
        keys = [_operator_key(op) for op in missing]
        data = {key: np.array(value) for key, value in extension.data.items()}
        data.update(extension._from_waveforms(keys))
        extension.data = data
        extension.params = {**extension.params, "operators": list(extension.params["operators"]) + missing}
        if analyzer.format != "memory":
            extension.save()

    # ------------------------------------------------------------------- save / curate
    def save(self, folder=None, format: str = "binary", use_relative_path: bool = False,
             overwrite: bool = False, **job_kwargs) -> "MockWaveformExtractor":
        """Save to another folder / format and return the saved extractor.

        Parameters
        ----------
        folder : str or Path or None, default: None
            Target folder (not for "memory"); ".zarr" is appended for zarr when missing.
        format : "binary" | "zarr" | "memory", default: "binary"
            "binary" (alias "binary_folder") and "zarr" are SortingAnalyzer layouts.
        use_relative_path : bool, default: False
            Store the recording's path relative to ``folder`` (see ``extract_waveforms``).
        overwrite : bool, default: False
            Replace an existing folder (once the new one is complete).
        **job_kwargs
            Accepted for compatibility (nothing is recomputed).
        """
        unknown, _ = split_job_kwargs(job_kwargs)
        if unknown:
            raise TypeError(f"save() got unexpected keyword arguments {sorted(unknown)}")
        return self._copy(None, folder, format, use_relative_path, overwrite)

    def select_units(self, unit_ids, new_folder=None, use_relative_path: bool = False) -> "MockWaveformExtractor":
        """A new extractor with only ``unit_ids`` (in memory, or in ``new_folder`` as a binary folder)."""
        for unit_id in unit_ids:
            self._unit_index(unit_id)
        return self._copy(list(unit_ids), new_folder, "binary" if new_folder is not None else "memory",
                          use_relative_path, overwrite=False)

    def _copy(self, unit_ids, folder, format: str, use_relative_path: bool,
              overwrite: bool) -> "MockWaveformExtractor":
        formats = {"binary": "binary_folder", "binary_folder": "binary_folder", "zarr": "zarr", "memory": "memory"}
        if format not in formats:
            raise ValueError(f"format must be 'binary', 'zarr' or 'memory', got {format!r}")
        analyzer, fmt = self.sorting_analyzer, formats[format]

        def copy_to(target_format: str, target) -> SortingAnalyzer:
            if unit_ids is None:
                return analyzer.save_as(folder=target, format=target_format)
            return analyzer.select_units(unit_ids, format=target_format, folder=target)

        if fmt == "memory":
            return MockWaveformExtractor(copy_to("memory", None))
        if folder is None:
            raise ValueError(f"folder is required for format={format!r}")
        final = Path(os.path.abspath(folder))
        if fmt == "zarr" and final.suffix != ".zarr":
            final = final.with_name(final.name + ".zarr")

        def build(tmp: Path) -> None:
            copy_to(fmt, tmp)
            _set_recording_paths(tmp, fmt, relative=bool(use_relative_path))

        _write_folder_atomically(final, overwrite, build)
        recording = analyzer._recording
        return MockWaveformExtractor(_open_analyzer(final, recording=recording, load_recording=False))


# ----------------------------------------------------------------------------------- helpers
def _template_key(mode, percentile) -> str:
    if mode not in _TEMPLATE_MODES:
        raise ValueError(f"mode must be one of {list(_TEMPLATE_MODES)}, got {mode!r}")
    if mode == "percentile":
        if percentile is None:
            raise ValueError("percentile is required when mode='percentile'")
        return f"percentile_{percentile}"
    return mode


def _template_operators(modes, argument: str) -> list:
    """Template operators of the templates extension from legacy modes (a ValueError names ``argument``)."""
    from .analyzer.core_extensions import _operator_key

    if modes is None:
        return []
    if isinstance(modes, str):
        modes = [modes]
    operators = []
    for mode in modes:
        operator = tuple(mode) if isinstance(mode, list) else mode
        try:
            _operator_key(operator)
        except ValueError:
            raise ValueError(f"{argument}: {mode!r} is not 'average', 'std', 'median' or ('percentile', q)") from None
        if operator not in operators:
            operators.append(operator)
    return operators


def _write_folder_atomically(final: Path, overwrite: bool, build: Callable[[Path], None]) -> None:
    """Run ``build(tmp)`` on a hidden temporary sibling path, then rename it to ``final``.

    The sibling shares ``final``'s parent, so paths stored relative to it stay valid after the rename.
    """
    if final.exists() and not overwrite:
        raise FolderExistsError(f"folder {final} already exists; use overwrite=True to replace it")
    with atomic_folder(final, overwrite=overwrite, argument="folder") as tmp:
        os.rmdir(tmp)  # the analyzer writers create their folder themselves
        build(tmp)


def _open_analyzer(folder: Path, recording=None, load_recording: bool = False, sorting=None) -> SortingAnalyzer:
    """A SortingAnalyzer on a saved folder, with ``recording`` (or the one of its provenance)."""
    from .sparsity import ChannelSparsity

    is_zarr = (folder / ".zgroup").is_file() or (folder / "zarr.json").is_file()
    if is_zarr:
        from .analyzer.zarr_storage import ZarrStorage

        storage = ZarrStorage(folder)
    elif (folder / "spikeinterface_info.json").is_file() and (folder / "recording_info").is_dir():
        storage = BinaryFolderStorage(folder)
    elif (folder / "waveforms").is_dir() or (folder / "params.json").is_file():
        raise ValueError(f"folder {folder} is a WaveformExtractor folder of SpikeInterface < 0.101, which sicore "
                         "does not read; convert it with SpikeInterface's load_waveforms(...).save_as(...)")
    else:
        raise ValueError(f"folder {folder} is not a waveforms (SortingAnalyzer) folder")
    root = storage.load_root(load_recording=load_recording and recording is None)
    if recording is not None:
        root.recording = recording
    if sorting is not None:
        _check_same_spikes(sorting, root.sorting)
        root.sorting = sorting
    sparsity = None
    if root.sparsity_mask is not None:
        sparsity = ChannelSparsity(root.sparsity_mask, root.sorting.unit_ids, root.rec_attributes["channel_ids"])
    analyzer = SortingAnalyzer(root, sparsity, storage)
    analyzer.load_all_saved_extension()
    return analyzer


def _check_same_spikes(sorting, saved) -> None:
    if not np.array_equal(np.asarray(sorting.unit_ids), np.asarray(saved.unit_ids)):
        raise ValueError("sorting: its unit_ids differ from the saved sorting's")
    mine, theirs = sorting.to_spike_vector(), saved.to_spike_vector()
    same = mine.size == theirs.size and all(np.array_equal(mine[k], theirs[k])
                                            for k in ("sample_index", "unit_index", "segment_index"))
    if not same:
        raise ValueError("sorting: its spikes differ from the saved sorting's (the sampled spikes would not match)")


def _set_recording_paths(folder: Path, fmt: str, relative: bool) -> None:
    """Rewrite the saved recording provenance with absolute paths unless ``relative`` (the analyzer's default)."""
    if relative:
        return
    if fmt == "binary_folder":
        file = folder / "recording.json"
        if file.is_file():
            write_json(file, _absolute_paths(read_json(file), folder))
    elif (folder / "recording" / ".zarray").is_file():
        from .analyzer.zarr_storage import read_json_object_array, write_json_object_array

        write_json_object_array(folder / "recording", _absolute_paths(read_json_object_array(folder / "recording"),
                                                                      folder))


def _absolute_paths(value, base_folder: Path):
    """A provenance dict with its relative paths (``relative_paths: true``) made absolute, recursively."""
    from .base import get_registered_class

    if isinstance(value, list):
        return [_absolute_paths(v, base_folder) for v in value]
    if not isinstance(value, dict):
        return value
    if not ("class" in value and isinstance(value.get("kwargs"), dict)):
        return {k: _absolute_paths(v, base_folder) for k, v in value.items()}
    try:
        path_kwargs = getattr(get_registered_class(value["class"]), "_path_kwargs", ())
    except ValueError:
        return value  # unknown class: left as written
    relative = bool(value.get("relative_paths", False))
    kwargs = {}
    for name, item in value["kwargs"].items():
        if name in path_kwargs and item is not None and relative:
            kwargs[name] = _resolve(item, base_folder)
        else:
            kwargs[name] = _absolute_paths(item, base_folder)
    return {**value, "kwargs": kwargs, "relative_paths": False}


def _resolve(paths, base_folder: Path):
    if isinstance(paths, (list, tuple)):
        return [_resolve(p, base_folder) for p in paths]
    return str((base_folder / paths).resolve())
