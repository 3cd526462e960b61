"""The core extensions: ``random_spikes``, ``waveforms``, ``templates`` and ``noise_levels``.

Storage follows SpikeInterface 0.105.3: random spike indices into the spike vector; waveforms
``(num_random_spikes, nbefore + nafter, max sparse channels)`` with each unit's channels packed first;
dense templates ``(num_units, nbefore + nafter, num_channels)`` (float64 from waveforms, float32 from the
recording) with zeros outside each unit's sparse channels; float32 noise levels per channel.
"""

from __future__ import annotations

import numpy as np

from ..job import split_job_kwargs
from .extension import AnalyzerExtension, extension_function, register_result_extension
from .waveform_tools import run_waveform_pass, unit_channel_table

_SI_CORE = "spikeinterface.core.analyzer_extension_core."


# ------------------------------------------------------------------------------------ random_spikes
class ComputeRandomSpikes(AnalyzerExtension):
    """Random selection of spikes per unit (indices into the sorting's spike vector).

    Parameters
    ----------
    method : "uniform" | "all", default: "uniform"
        "uniform": up to ``max_spikes_per_unit`` spikes per unit drawn without replacement; "all": every spike.
    max_spikes_per_unit : int, default: 500
        Largest number of spikes per unit ("uniform").
    margin_size : int or None, default: None
        Drop spikes closer than this many samples to a segment border.
    seed : int or None, default: None
        Seed of the random generator (stored as given, as SpikeInterface does).
    """

    extension_name = "random_spikes"
    depend_on = ()
    need_recording = False
    si_class = _SI_CORE + "ComputeRandomSpikes"

    def _set_params(self, method: str = "uniform", max_spikes_per_unit: int = 500, margin_size: int | None = None,
                    seed: int | None = None) -> dict:
        if method not in ("uniform", "all", "percentage", "maximum_rate"):
            raise ValueError(f"method must be 'uniform' or 'all', got {method!r}")
        return {"method": method, "max_spikes_per_unit": max_spikes_per_unit, "margin_size": margin_size,
                "seed": seed}

    def _run(self, verbose: bool = False) -> None:
        from ..sorting_tools import random_spikes_selection

        analyzer = self._sorting_analyzer
        num_samples = [analyzer.get_num_samples(i) for i in range(analyzer.get_num_segments())]
        indices = random_spikes_selection(analyzer.sorting, num_samples=num_samples, **self.params)
        self.data = {"random_spikes_indices": np.asarray(indices, dtype=np.int64)}

    def _get_data(self) -> np.ndarray:
        return self.data["random_spikes_indices"]

    def get_random_spikes(self) -> np.ndarray:
        """The selected spikes (spike-vector dtype), in spike-vector order."""
        return self._sorting_analyzer.sorting.to_spike_vector()[self.data["random_spikes_indices"]]

    def get_selected_indices_in_spike_train(self, unit_id, segment_index: int | None) -> np.ndarray:
        """Positions of the selected spikes of ``unit_id`` within its spike train of ``segment_index``."""
        analyzer = self._sorting_analyzer
        segment_index = analyzer.sorting._check_segment_index(segment_index)
        unit_index = analyzer.sorting.id_to_index(unit_id)
        spikes = analyzer.sorting.to_spike_vector()
        in_train = (spikes["unit_index"] == unit_index) & (spikes["segment_index"] == segment_index)
        rank = np.cumsum(in_train) - 1
        selected = self.data["random_spikes_indices"]
        return rank[selected[in_train[selected]]]

    def _select_units_extension_data(self, unit_ids, new_sorting_analyzer) -> dict:
        spike_map = new_sorting_analyzer._curation_spike_map
        return {"random_spikes_indices": _map_sorted(self.data["random_spikes_indices"], spike_map)[0]}

    def _merge_extension_data(self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask,
                              **job_kwargs) -> dict:
        return {"random_spikes_indices": _map_sorted(self.data["random_spikes_indices"],
                                                     new_sorting_analyzer._curation_spike_map)[0]}


def _map_sorted(old_indices: np.ndarray, spike_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Old spike-vector indices mapped into the new spike vector (dropped spikes removed), sorted.

    Returns the new indices and, for each of them, the row of ``old_indices`` it comes from.
    """
    new = spike_map[np.asarray(old_indices, dtype=np.int64)]
    rows = np.flatnonzero(new >= 0)
    order = np.argsort(new[rows], kind="stable")
    return new[rows][order].astype(np.int64), rows[order]


# ------------------------------------------------------------------------------------ waveforms
class ComputeWaveforms(AnalyzerExtension):
    """Waveforms of the random spikes, on each unit's sparse channels.

    Parameters
    ----------
    ms_before : float, default: 1.0
        Milliseconds before each spike.
    ms_after : float, default: 2.0
        Milliseconds after each spike.
    dtype : numpy dtype or None, default: None
        Dtype of the waveforms: float32 when the analyzer is scaled, else the recording's dtype.
    """

    extension_name = "waveforms"
    depend_on = ("random_spikes",)
    need_recording = True
    need_job_kwargs = True
    si_class = _SI_CORE + "ComputeWaveforms"

    @property
    def nbefore(self) -> int:
        return int(self.params["ms_before"] * self._sorting_analyzer.sampling_frequency / 1000.0)

    @property
    def nafter(self) -> int:
        return int(self.params["ms_after"] * self._sorting_analyzer.sampling_frequency / 1000.0)

    def _set_params(self, ms_before: float = 1.0, ms_after: float = 2.0, dtype=None) -> dict:
        for name, value in (("ms_before", ms_before), ("ms_after", ms_after)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number of milliseconds, got {value!r}")
        analyzer = self._sorting_analyzer
        if dtype is None:
            dtype = np.float32 if analyzer.return_scaled else analyzer.get_dtype()
        return {"ms_before": float(ms_before), "ms_after": float(ms_after), "dtype": np.dtype(dtype).str}

    def _run(self, verbose: bool = False, **job_kwargs) -> None:
        _, job_kwargs = split_job_kwargs(job_kwargs)
        random_spikes = self._sorting_analyzer.get_extension("random_spikes").get_random_spikes()
        self.data = {"waveforms": self._cut_waveforms(random_spikes, job_kwargs)}

    def _channel_table(self) -> np.ndarray:
        analyzer = self._sorting_analyzer
        return unit_channel_table(analyzer.sparsity_mask, analyzer.get_num_units(), analyzer.get_num_channels())

    def waveforms_shape(self, num_spikes: int) -> tuple[int, int, int]:
        """Shape of the waveforms of ``num_spikes`` spikes: ``(num_spikes, nbefore + nafter, max channels)``."""
        return int(num_spikes), self.nbefore + self.nafter, self._channel_table().shape[1]

    def _cut_waveforms(self, spikes: np.ndarray, job_kwargs: dict, out: np.ndarray | None = None) -> np.ndarray:
        """Waveforms of ``spikes`` (a run of the random spikes; the sharded pass gives each shard's part).

        ``out`` (``waveforms_shape(spikes.size)``, the params' dtype, zero-filled) receives them; by default
        ``_new_data_array`` makes it. When it is a memory-mapped file the workers write into the file.
        """
        from .storage import file_backing

        analyzer = self._sorting_analyzer
        table = self._channel_table()
        shape = (spikes.size, self.nbefore + self.nafter, table.shape[1])
        if out is None:
            out = self._new_data_array("waveforms", shape, self.params["dtype"])
        if out.shape != shape or out.dtype != np.dtype(self.params["dtype"]):
            raise ValueError(f"out must be a {shape} {np.dtype(self.params['dtype'])} array, got {out.shape} {out.dtype}")
        sink = file_backing(out)

        def gather(positions, chunk_waveforms):
            if chunk_waveforms is not None:
                out[positions] = chunk_waveforms

        run_waveform_pass(analyzer.recording, spikes, self.nbefore, self.nafter, analyzer.return_scaled,
                          table, self.params["dtype"], gather, job_kwargs, job_name="compute_waveforms", sink=sink)
        return out

    def _get_data(self) -> np.ndarray:
        return self.data["waveforms"]

    def get_waveforms_one_unit(self, unit_id, force_dense: bool = False) -> np.ndarray:
        """Waveforms ``(num_spikes, nbefore + nafter, channels)`` of one unit: its sparse channels, or all."""
        analyzer = self._sorting_analyzer
        unit_index = analyzer.sorting.id_to_index(unit_id)
        spikes = analyzer.get_extension("random_spikes").get_random_spikes()
        rows = np.flatnonzero(spikes["unit_index"] == unit_index)
        channels = analyzer._unit_channel_indices(unit_index)
        unit_waveforms = np.asarray(self.data["waveforms"][rows][:, :, : channels.size])
        if not force_dense or channels.size == analyzer.get_num_channels():
            return unit_waveforms
        dense = np.zeros(unit_waveforms.shape[:2] + (analyzer.get_num_channels(),), dtype=unit_waveforms.dtype)
        dense[:, :, channels] = unit_waveforms
        return dense

    def _select_units_extension_data(self, unit_ids, new_sorting_analyzer) -> dict:
        new_analyzer = new_sorting_analyzer
        old_rs = self._sorting_analyzer.get_extension("random_spikes").data["random_spikes_indices"]
        _, rows = _map_sorted(old_rs, new_analyzer._curation_spike_map)
        table = unit_channel_table(new_analyzer.sparsity_mask, new_analyzer.get_num_units(),
                                   new_analyzer.get_num_channels())
        return {"waveforms": np.asarray(self.data["waveforms"][rows][:, :, : table.shape[1]])}

    def _merge_extension_data(self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask,
                              **job_kwargs) -> dict:
        # repack each spike's channels from its old unit's sparsity to its new unit's
        old = self._sorting_analyzer
        old_spikes = old.get_extension("random_spikes").get_random_spikes()
        old_rs = old.get_extension("random_spikes").data["random_spikes_indices"]
        new_rs, rows = _map_sorted(old_rs, new_sorting_analyzer._curation_spike_map)
        new_units = new_sorting_analyzer.sorting.to_spike_vector()["unit_index"][new_rs]
        table = unit_channel_table(new_sorting_analyzer.sparsity_mask, new_sorting_analyzer.get_num_units(),
                                   new_sorting_analyzer.get_num_channels())
        old_waveforms = self.data["waveforms"]
        waveforms = np.zeros((rows.size, old_waveforms.shape[1], table.shape[1]), dtype=old_waveforms.dtype)
        for i, (row, new_unit) in enumerate(zip(rows.tolist(), new_units.tolist())):
            old_channels = old._unit_channel_indices(old_spikes["unit_index"][row])
            new_channels = table[new_unit][table[new_unit] >= 0]
            dense = np.zeros((old_waveforms.shape[1], old.get_num_channels()), dtype=old_waveforms.dtype)
            dense[:, old_channels] = old_waveforms[row][:, : old_channels.size]
            waveforms[i, :, : new_channels.size] = dense[:, new_channels]
        return {"waveforms": waveforms}


# ------------------------------------------------------------------------------------ templates
def _operator_key(operator) -> str:
    if isinstance(operator, (tuple, list)):
        if len(operator) != 2 or operator[0] != "percentile":
            raise ValueError(f"operators: {operator!r} is not ('percentile', q)")
        return f"percentile_{operator[1]}"
    if operator not in ("average", "std", "median"):
        raise ValueError(f"operators: {operator!r} is not one of 'average', 'std', 'median', ('percentile', q)")
    return operator


class ComputeTemplates(AnalyzerExtension):
    """Templates of each unit: statistics of its random spikes' waveforms.

    Parameters
    ----------
    operators : list, default: ["average", "std"]
        Any of "average", "std", "median", ("percentile", q). "median" and percentiles need the
        waveforms extension.
    ms_before : float, default: 1.0
        Milliseconds before the spike (taken from the waveforms extension when present).
    ms_after : float, default: 2.0
        Milliseconds after the spike (taken from the waveforms extension when present).
    """

    extension_name = "templates"
    depend_on = ("waveforms|random_spikes",)
    need_job_kwargs = True
    si_class = _SI_CORE + "ComputeTemplates"

    @property
    def nbefore(self) -> int:
        return int(self.params["ms_before"] * self._sorting_analyzer.sampling_frequency / 1000.0)

    @property
    def nafter(self) -> int:
        return int(self.params["ms_after"] * self._sorting_analyzer.sampling_frequency / 1000.0)

    def _set_params(self, operators=None, ms_before: float = 1.0, ms_after: float = 2.0) -> dict:
        operators = ["average", "std"] if operators is None else list(operators)
        operators = [tuple(op) if isinstance(op, list) else op for op in operators]
        for op in operators:
            _operator_key(op)
        analyzer = self._sorting_analyzer
        if analyzer.has_extension("waveforms"):
            waveforms_params = analyzer.get_extension("waveforms").params
            ms_before, ms_after = waveforms_params["ms_before"], waveforms_params["ms_after"]
        else:
            needs = [op for op in operators if op not in ("average", "std")]
            if needs:
                raise ValueError(
                    f"operators {needs} need the waveforms extension; compute('waveforms') first "
                    "(without it only 'average' and 'std' are possible)"
                )
        return {"operators": operators, "ms_before": float(ms_before), "ms_after": float(ms_after)}

    def _params_from_json(self, params: dict) -> dict:
        params = dict(params)
        params["operators"] = [tuple(op) if isinstance(op, list) else op for op in params.get("operators", [])]
        return params

    @property
    def need_recording(self) -> bool:  # from waveforms, no recording is read
        return not self._sorting_analyzer.has_extension("waveforms")

    def _run(self, verbose: bool = False, **job_kwargs) -> None:
        analyzer = self._sorting_analyzer
        if analyzer.has_extension("waveforms"):
            self.data = self._from_waveforms([_operator_key(op) for op in self.params["operators"]])
        else:
            self.data = self._from_recording(job_kwargs)

    def _from_waveforms(self, keys: list[str], unit_indices=None) -> dict:
        analyzer = self._sorting_analyzer
        waveforms = analyzer.get_extension("waveforms").data["waveforms"]
        spikes = analyzer.get_extension("random_spikes").get_random_spikes()
        num_units, num_channels = analyzer.get_num_units(), analyzer.get_num_channels()
        width = waveforms.shape[1]
        data = {key: np.zeros((num_units, width, num_channels), dtype=np.float64) for key in keys}
        units = range(num_units) if unit_indices is None else unit_indices
        for unit_index in units:
            rows = np.flatnonzero(spikes["unit_index"] == unit_index)
            if rows.size == 0:
                continue
            channels = analyzer._unit_channel_indices(unit_index)
            unit_waveforms = np.asarray(waveforms[rows][:, :, : channels.size], dtype=np.float64)
            for key in keys:
                data[key][unit_index][:, channels] = _apply_operator(key, unit_waveforms)
        return data

    def _from_recording(self, job_kwargs: dict) -> dict:
        _, job_kwargs = split_job_kwargs(job_kwargs)
        spikes = self._sorting_analyzer.get_extension("random_spikes").get_random_spikes()
        sums, squares = self._accumulate_from_recording(spikes, job_kwargs)
        return self._templates_from_sums(sums, squares, spikes)

    def _sums_in_raw_counts(self) -> bool:
        """True when the recording-pass sums are of the raw integer traces (scaled to µV only at the end).

        Integer traces of at most 16 bits: their sums and sums of squares are exact in int64, so workers
        accumulate them in place and nothing but the small sums leaves a worker. Other dtypes (floats) sum
        float32 cut-outs in float64 in spike order instead.
        """
        dtype = np.dtype(self._sorting_analyzer.get_dtype())
        return dtype.kind in "iu" and dtype.itemsize <= 2

    def _accumulate_from_recording(self, spikes: np.ndarray, job_kwargs: dict) -> tuple[np.ndarray, np.ndarray]:
        """Per-unit sums and sums of squares ``(units, width, max_channels)`` of ``spikes``' waveforms.

        One chunked pass; the sums can be added across runs of spikes (the sharded pass calls this on each
        shard's run and adds the results) before ``_templates_from_sums``. Integer recordings
        (``_sums_in_raw_counts``): exact integer sums of the raw windows (zeros outside the segment), so any
        n_jobs / chunk size gives the same sums. Otherwise: float64 sums of the float32 cut-outs, each unit's
        spikes added one after the other in spike order (the order of an unbuffered np.add.at).
        """
        from ..sparsity import _accumulate_spike_windows

        analyzer = self._sorting_analyzer
        num_units, num_channels = analyzer.get_num_units(), analyzer.get_num_channels()
        table = unit_channel_table(analyzer.sparsity_mask, num_units, num_channels)
        if self._sums_in_raw_counts():
            dense = analyzer.sparsity_mask is None
            _, job_kwargs = split_job_kwargs(job_kwargs)
            return _accumulate_spike_windows(analyzer.recording, spikes, num_units, self.nbefore, self.nafter,
                                             channel_table=None if dense else table, with_squares=True,
                                             zero_pad=True, job_name="estimate_templates", **job_kwargs)
        width = self.nbefore + self.nafter
        sums = np.zeros((num_units, width, table.shape[1]), dtype=np.float64)
        squares = np.zeros_like(sums)

        def gather(positions, chunk_waveforms):
            # Each unit's spikes are added one after the other in spike order (the float64 operations of an
            # unbuffered np.add.at), vectorised across units: step r adds every unit's r-th spike of the
            # chunk, and the units of one step are distinct.
            units = spikes["unit_index"][positions]
            order = np.argsort(units, kind="stable")
            sorted_units = units[order]
            first = np.flatnonzero(np.r_[True, sorted_units[1:] != sorted_units[:-1]])
            rank = np.arange(units.size) - np.repeat(first, np.diff(np.r_[first, units.size]))
            for r in range(int(rank.max()) + 1 if units.size else 0):
                chosen = order[rank == r]
                step_units = units[chosen]
                step_values = chunk_waveforms[chosen]
                sums[step_units] += step_values  # float64 += float32: the float64 sum of the float32 values
                squares[step_units] += np.square(step_values, dtype=np.float64)

        run_waveform_pass(analyzer.recording, spikes, self.nbefore, self.nafter, analyzer.return_scaled,
                          table, np.float32 if analyzer.return_scaled else analyzer.get_dtype(), gather,
                          job_kwargs, job_name="estimate_templates")
        return sums, squares

    def _templates_from_sums(self, sums: np.ndarray, squares: np.ndarray, spikes: np.ndarray) -> dict:
        """The extension data (dense float32 ``average`` / ``std``) from the sums over all random ``spikes``."""
        analyzer = self._sorting_analyzer
        num_units, num_channels = analyzer.get_num_units(), analyzer.get_num_channels()
        table = unit_channel_table(analyzer.sparsity_mask, num_units, num_channels)
        counts = np.bincount(spikes["unit_index"], minlength=num_units).astype(np.float64)
        if self._sums_in_raw_counts():
            mean, var = self._raw_moments(sums, squares, spikes, table)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sums / counts[:, None, None]
                var = squares / counts[:, None, None] - mean * mean
        std = np.sqrt(np.maximum(var, 0.0))
        mean[counts == 0] = 0.0
        std[counts == 0] = 0.0
        data = {}
        for op in self.params["operators"]:
            packed = mean if op == "average" else std
            data[op] = _unpack_dense(packed, table, num_channels).astype(np.float32)
        return data

    def _raw_moments(self, sums: np.ndarray, squares: np.ndarray, spikes: np.ndarray,
                     table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance (float64, µV when the analyzer is scaled) from exact raw-count sums.

        A cut-out value is ``y = g * x + o`` inside the segment and 0 outside (g, o: the channel's float32
        gain and offset, as ``get_traces(return_scaled=True)`` uses). With ``n`` spikes, ``m`` of them inside
        at that sample, ``S = sum(x)`` and ``Q = sum(x**2)``::

            n**2 * var(y) = g**2 * (n * Q - S**2) + (n - m) * (2 * g * o * S + o**2 * m)

        ``n * Q - S**2`` is computed exactly in int64 (when it cannot overflow), so the variance has no
        cancellation error; the scaled terms then differ from numpy's std of the float32 µV cut-outs only by
        float rounding.
        """
        analyzer = self._sorting_analyzer
        num_units = table.shape[0]
        # the sharded gather hands float64 copies of the (exact integer) sums
        sums = np.rint(sums).astype(np.int64) if np.asarray(sums).dtype.kind == "f" else np.asarray(sums, np.int64)
        squares = (np.rint(squares).astype(np.int64) if np.asarray(squares).dtype.kind == "f"
                   else np.asarray(squares, np.int64))
        counts = np.bincount(spikes["unit_index"], minlength=num_units).astype(np.int64)
        n = counts[:, None, None]
        largest = float(np.max(np.abs(squares), initial=0))
        if float(counts.max(initial=0)) * largest < 2.0**62:
            spread = (n * squares - sums * sums).astype(np.float64)  # exact: n * Q - S**2 >= 0
        else:
            spread = n * squares.astype(np.float64) - sums.astype(np.float64) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            n2 = (n * n).astype(np.float64)
            if not analyzer.return_scaled:
                return sums / n, spread / n2
            gains = analyzer.get_recording_property("gain_to_uV")
            offsets = analyzer.get_recording_property("offset_to_uV")
            if gains is None:
                raise ValueError("return_scaled=True needs the gain_to_uV and offset_to_uV channel properties, "
                                 "which are not set")
            offsets = np.zeros(len(gains)) if offsets is None else offsets
            safe = np.where(table >= 0, table, 0)
            g = np.asarray(gains, dtype=np.float32).astype(np.float64)[safe][:, None, :]
            o = np.asarray(offsets, dtype=np.float32).astype(np.float64)[safe][:, None, :]
            m = self._inside_counts(spikes, num_units)[:, :, None].astype(np.float64)
            sums_f = sums.astype(np.float64)
            mean = (g * sums_f + o * m) / n
            var = (g * g * spread + (n - m) * (2.0 * g * o * sums_f + o * o * m)) / n2
        return mean, var

    def _inside_counts(self, spikes: np.ndarray, num_units: int) -> np.ndarray:
        """``(units, width)``: how many of each unit's spikes have window sample t inside their segment."""
        analyzer = self._sorting_analyzer
        nbefore, width = self.nbefore, self.nbefore + self.nafter
        counts = np.bincount(spikes["unit_index"], minlength=num_units).astype(np.int64)
        inside = np.repeat(counts[:, None], width, axis=1)
        lengths = np.array([analyzer.get_num_samples(i) for i in range(analyzer.get_num_segments())], np.int64)
        first = spikes["sample_index"].astype(np.int64) - nbefore
        last = first + width
        near = np.flatnonzero((first < 0) | (last > lengths[spikes["segment_index"]]))
        for k in near.tolist():  # only the spikes whose window crosses a segment border
            t = first[k] + np.arange(width)
            outside = (t < 0) | (t >= lengths[spikes["segment_index"][k]])
            inside[spikes["unit_index"][k]] -= outside
        return inside

    # ------------------------------------------------------------ access
    def _get_data(self, operator: str = "average", percentile: float | None = None, outputs: str = "numpy"):
        key = self._resolve_key(operator, percentile)
        if key not in self.data:
            if not self._sorting_analyzer.has_extension("waveforms"):
                raise ValueError(
                    f"operator {key!r} was not computed (computed: {list(self.data)}) and needs the waveforms "
                    "extension; compute('templates', operators=[...]) with it"
                )
            self.data[key] = self._from_waveforms([key])[key]
        return self.data[key]

    @staticmethod
    def _resolve_key(operator, percentile) -> str:
        if operator == "percentile":
            if percentile is None:
                raise ValueError("percentile is required when operator='percentile'")
            return f"percentile_{percentile}"
        return _operator_key(operator)

    def get_templates(self, unit_ids=None, operator: str = "average", percentile: float | None = None,
                      save: bool = True, outputs: str = "numpy"):
        """Dense templates ``(units, nbefore + nafter, num_channels)`` of ``unit_ids`` (all when None).

        Parameters
        ----------
        unit_ids : array-like or None, default: None
            Units, in the order wanted.
        operator : "average" | "std" | "median" | "percentile", default: "average"
            Statistic.
        percentile : float or None, default: None
            The percentile, for ``operator="percentile"``.
        save : bool, default: True
            Accepted for SpikeInterface compatibility (an operator computed on the fly is kept in memory).
        outputs : "numpy", default: "numpy"
            Only numpy arrays are returned.
        """
        if outputs != "numpy":
            raise ValueError(f"outputs must be 'numpy', got {outputs!r}")
        templates = self.get_data(operator=operator, percentile=percentile)
        if unit_ids is None:
            return np.asarray(templates)
        indices = self._sorting_analyzer.sorting.ids_to_indices(unit_ids)
        return np.asarray(templates[indices])

    def get_unit_template(self, unit_id, operator: str = "average") -> np.ndarray:
        """Dense template ``(nbefore + nafter, num_channels)`` of one unit."""
        unit_index = self._sorting_analyzer.sorting.id_to_index(unit_id)
        return np.asarray(self.get_data(operator=operator)[unit_index])

    def _select_units_extension_data(self, unit_ids, new_sorting_analyzer) -> dict:
        indices = self._sorting_analyzer.sorting.ids_to_indices(unit_ids)
        return {key: np.asarray(values[indices]) for key, values in self.data.items()}

    def _merge_extension_data(self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask,
                              **job_kwargs) -> dict | None:
        if "waveforms" in new_sorting_analyzer.extensions:
            # exact: recompute every operator from the merged waveforms
            merged = ComputeTemplates(new_sorting_analyzer)
            merged.params = dict(self.params)
            return merged._from_waveforms([_operator_key(op) for op in self.params["operators"]])
        old = self._sorting_analyzer
        new_unit_index = {u: i for i, u in enumerate(new_sorting_analyzer.unit_ids.tolist())}
        counts = np.bincount(old.get_extension("random_spikes").get_random_spikes()["unit_index"],
                             minlength=old.get_num_units()).astype(np.float64)
        data = {}
        for key, values in self.data.items():
            if key not in ("average", "std"):
                continue  # medians and percentiles do not combine: dropped
            out = np.zeros((new_sorting_analyzer.get_num_units(),) + values.shape[1:], dtype=values.dtype)
            kept = old.unit_ids[keep_mask]
            out[[new_unit_index[u] for u in kept.tolist()]] = values[keep_mask]
            for group, new_id in zip(merge_unit_groups, new_unit_ids):
                idx = old.sorting.ids_to_indices(group)
                weights = counts[idx] / max(counts[idx].sum(), 1.0)
                means = self.data["average"][idx].astype(np.float64)
                mean = np.tensordot(weights, means, axes=1)
                if key == "average":
                    merged = mean
                else:
                    stds = values[idx].astype(np.float64)
                    merged = np.sqrt(np.maximum(np.tensordot(weights, stds**2 + means**2, axes=1) - mean**2, 0))
                mask = new_sorting_analyzer.sparsity_mask
                if mask is not None:
                    merged = merged * mask[new_unit_index[new_id]][None, :]
                out[new_unit_index[new_id]] = merged
            data[key] = out
        if not data:
            return None
        return data


def _apply_operator(key: str, waveforms: np.ndarray) -> np.ndarray:
    if key == "average":
        return np.mean(waveforms, axis=0)
    if key == "std":
        return np.std(waveforms, axis=0)
    if key == "median":
        return np.median(waveforms, axis=0)
    return np.percentile(waveforms, float(key.split("_", 1)[1]), axis=0)


def _unpack_dense(packed: np.ndarray, table: np.ndarray, num_channels: int) -> np.ndarray:
    """``(units, width, max_channels)`` packed per the channel table, to dense ``(units, width, num_channels)``."""
    dense = np.zeros(packed.shape[:2] + (num_channels,), dtype=packed.dtype)
    for unit_index, channels in enumerate(table):
        channels = channels[channels >= 0]
        dense[unit_index][:, channels] = packed[unit_index][:, : channels.size]
    return dense


# ------------------------------------------------------------------------------------ noise_levels
class ComputeNoiseLevels(AnalyzerExtension):
    """Noise level of each channel (``get_noise_levels``: MAD over random chunks by default).

    Parameters
    ----------
    **params
        Options of ``get_noise_levels`` (``method``, ``random_slices_kwargs``, ``num_chunks_per_segment``,
        ``chunk_duration``, ``seed``...). The random seed is drawn when not given and stored, as
        SpikeInterface does, so the result can be reproduced.
    """

    extension_name = "noise_levels"
    depend_on = ()
    need_recording = True
    need_job_kwargs = True
    si_class = _SI_CORE + "ComputeNoiseLevels"

    _direct_slice_keys = ("num_chunks_per_segment", "chunk_size", "chunk_duration", "margin_frames", "seed")

    def _set_params(self, **params) -> dict:
        params = dict(params)
        random_slices_kwargs = dict(params.pop("random_slices_kwargs", None) or {})
        for key in self._direct_slice_keys:
            if key in params:
                random_slices_kwargs[key] = params.pop(key)
        if random_slices_kwargs.get("seed") is None:
            random_slices_kwargs["seed"] = int(np.random.default_rng().integers(0, 2**63 - 1))
        params["random_slices_kwargs"] = random_slices_kwargs
        return params

    def _run(self, verbose: bool = False, **job_kwargs) -> None:
        from ..recording_tools import get_noise_levels

        noise_levels = get_noise_levels(self._sorting_analyzer.recording, **self._noise_levels_kwargs(job_kwargs))
        self.data = {"noise_levels": np.asarray(noise_levels)}

    def _noise_levels_kwargs(self, job_kwargs: dict) -> dict:
        """Keyword arguments of ``get_noise_levels`` for these params (shared with the sharded pass)."""
        _, job_kwargs = split_job_kwargs(job_kwargs)
        job_kwargs = {k: v for k, v in job_kwargs.items() if k not in ("chunk_duration", "chunk_size",
                                                                         "chunk_memory", "total_memory")}
        params = dict(self.params)
        return {"return_scaled": self._sorting_analyzer.return_scaled,
                "random_slices_kwargs": dict(params.pop("random_slices_kwargs")), **params, **job_kwargs}

    def _get_data(self) -> np.ndarray:
        return self.data["noise_levels"]

    def _select_units_extension_data(self, unit_ids, new_sorting_analyzer) -> dict:
        return {"noise_levels": np.array(self.data["noise_levels"])}

    def _merge_extension_data(self, merge_unit_groups, new_unit_ids, new_sorting_analyzer, keep_mask,
                              **job_kwargs) -> dict:
        return {"noise_levels": np.array(self.data["noise_levels"])}


for _cls in (ComputeRandomSpikes, ComputeWaveforms, ComputeTemplates, ComputeNoiseLevels):
    register_result_extension(_cls)

compute_random_spikes = extension_function("random_spikes")
compute_waveforms = extension_function("waveforms")
compute_templates = extension_function("templates")
compute_noise_levels = extension_function("noise_levels")
