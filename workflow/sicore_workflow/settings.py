"""From the validated config to sessions: merged settings, output paths and each rule's parameters.

Every value that reaches a rule's ``params`` is built here, as sorted JSON or a fixed string, so the
same config always gives the same params (Snakemake reruns a job when they change). Paths, thread
counts and job options never go into params.
"""

from __future__ import annotations

import copy
import json
import shlex
from dataclasses import dataclass
from typing import Any

from sicore.sources import check_recording_source, check_sorting_source, source_paths

# config sections a session may override (the `job` section is global)
SECTIONS = ("save_recording", "sparsity", "analyzer", "random_spikes", "waveforms", "templates", "noise_levels",
            "report", "sharding")
EXTENSIONS = ("random_spikes", "waveforms", "templates", "noise_levels")
SHARDED_PASSES = ("save_recording", "noise_levels", "templates", "waveforms")  # sicore.sharding_plan.PASSES
RESULTS = "results"
_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """A config value that the schema accepts but that does not fit with the others (the message names it)."""


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged in (nested dicts merged, other values replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def canonical_json(value: Any) -> str:
    """Sorted, compact JSON: the same value always gives the same string."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class Session:
    """One recording + sorting pair and the settings of every operation on it.

    Parameters
    ----------
    name : str
        The session name (the ``{session}`` wildcard).
    recording : dict
        The checked recording source.
    sorting : dict
        The checked sorting source (``ground_truth`` already resolved).
    settings : dict
        ``{section: values}``: the global sections with the session's overrides merged in.
    """

    name: str
    recording: dict
    sorting: dict
    settings: dict

    # ------------------------------------------------------------------ paths
    def path(self, *parts: str) -> str:
        return "/".join((RESULTS, self.name) + parts)

    @property
    def recording_dir(self) -> str:
        return "recording.zarr" if self.settings["save_recording"]["format"] == "zarr" else "recording"

    @property
    def analyzer_dir(self) -> str:
        # SpikeInterface recognises a zarr analyzer by its ".zarr" suffix
        return "analyzer.zarr" if self.settings["analyzer"]["format"] == "zarr" else "analyzer"

    @property
    def recording_path(self) -> str:
        return self.path(self.recording_dir)

    @property
    def sorting_path(self) -> str:
        return self.path("sorting")

    @property
    def sparsity_path(self) -> str:
        return self.path("sparsity.json")

    @property
    def main_channels_path(self) -> str:
        """Each unit's main channel, from the sparsity estimate's pass (given to create_analyzer)."""
        return self.path("main_channels.json")

    @property
    def analyzer_root(self) -> str:
        """The folder that marks a created analyzer (written by create_analyzer, never by extensions)."""
        return self.path(self.analyzer_dir, "recording_info")

    def extension_path(self, name: str) -> str:
        return self.path(self.analyzer_dir, "extensions", name)

    def shard_root(self, pass_name: str) -> str:
        """Folder of a pass's shard folders: ``shards/<output folder>/<pass>``, outside the outputs themselves.

        The output folder's name is part of the path, so the shards of e.g. a zarr and a binary save never mix.
        """
        folder = self.recording_dir if pass_name == "save_recording" else self.analyzer_dir
        return self.path("shards", folder, pass_name)

    def shard_folders(self, pass_name: str) -> list[str]:
        """The shard folders a gather reads, in shard order (``sicore.sharding_plan.shard_folder_name``)."""
        count = self.num_shards(pass_name)
        return [f"{self.shard_root(pass_name)}/shard-{i:03d}-of-{count:03d}" for i in range(count)]

    @property
    def report_path(self) -> str:
        return self.path("report")

    # ------------------------------------------------------------ what runs
    @property
    def extensions(self) -> list[str]:
        """The extensions computed for this session, parents first."""
        return [name for name in EXTENSIONS if self.settings.get(name, {}).get("enabled", True)]

    def parents(self, name: str) -> list[str]:
        """The extensions a rule waits for: the library's parents, plus waveforms before templates.

        When templates are computed from the random spikes but waveforms are computed too, templates
        still wait for waveforms: the library deletes templates whenever waveforms are (re)computed.
        """
        if name == "waveforms":
            return ["random_spikes"]
        if name == "templates":
            return ["random_spikes", "waveforms"] if "waveforms" in self.extensions else ["random_spikes"]
        return []

    def targets(self) -> list[str]:
        files = [self.extension_path(name) for name in self.extensions]
        if self.settings["report"]["enabled"]:
            files.append(self.report_path)
        return files

    # ---------------------------------------------------------------- params
    def recording_json(self) -> str:
        return canonical_json(self.recording)

    def sorting_json(self) -> str:
        return canonical_json(self.sorting)

    def recording_inputs(self) -> list[str]:
        return source_paths(self.recording, "recording")

    @property
    def sparsity_from_source(self) -> bool:
        """Whether estimate_sparsity reads the recording source rather than the saved recording.

        When the save keeps the source's dtype (``save_recording.dtype: null``) the saved traces are the
        source's, so the estimate is the same from either; reading the source lets the job run beside
        save_recording instead of after it (one job less on the workflow's critical path).
        """
        return self.settings["save_recording"]["dtype"] is None

    def sparsity_recording_inputs(self) -> list[str]:
        return self.recording_inputs() if self.sparsity_from_source else [self.recording_path]

    def sparsity_recording_argument(self) -> str:
        """The RECORDING argument of ``sicore estimate-sparsity``: the source as JSON, or the saved folder."""
        return self.recording_json() if self.sparsity_from_source else self.recording_path

    def sorting_inputs(self) -> list[str]:
        return source_paths(self.sorting, "sorting")

    def params_json(self, operation: str) -> str:
        """The parameters given to ``sicore`` for ``operation`` (a rule name), as canonical JSON."""
        return canonical_json(_OPERATION_PARAMS[operation](self.settings))

    def create_analyzer_options(self) -> str:
        """Flags of ``sicore create-analyzer`` (the sparsity file, when any, follows ``--sparsity``)."""
        analyzer = self.settings["analyzer"]
        flags = ["--format", analyzer["format"], "--return-scaled" if analyzer["return_scaled"] else
                 "--no-return-scaled"]
        if self.sparse:  # the main channels found by the sparsity estimate's pass (an input of the rule)
            flags += ["--main-channels", shlex.quote(self.main_channels_path), "--sparsity"]
        else:
            flags.append("--dense")
        return " ".join(flags)

    @property
    def sparse(self) -> bool:
        return bool(self.settings["sparsity"]["enabled"])

    @property
    def templates_parent(self) -> str:
        return self.settings["templates"]["source"]

    # ------------------------------------------------------------- sharding
    @property
    def binary_layout(self) -> str:
        """Layout of a sharded binary save: ``single_file`` (as unsharded) or ``pieces`` (no gather copy)."""
        return self.settings["sharding"]["binary_layout"]

    @property
    def gather_copies_traces(self) -> bool:
        """True when the save's gather copies the traces (binary single_file); zarr links, pieces are moved."""
        return self.settings["save_recording"]["format"] == "binary" and self.binary_layout == "single_file"

    def num_shards(self, pass_name: str) -> int:
        """Number of shard jobs of ``pass_name``; 1 means the pass runs unsharded (one job, as without sharding).

        Only heavy passes over the traces are sharded: templates only when computed from the recording
        (``templates.source: random_spikes``; from waveforms they read no traces), extensions only when
        enabled. With ``shard_duration`` the count is ``sicore.count_shards`` of the source recording's
        length, known when the DAG is built (the saved recording has the same samples).
        """
        sharding = self.settings["sharding"]
        if pass_name not in sharding["passes"]:
            return 1
        if pass_name in EXTENSIONS and pass_name not in self.extensions:
            return 1
        if pass_name == "templates" and self.templates_parent != "random_spikes":
            return 1
        if sharding["shards"] is not None:
            return int(sharding["shards"])
        if sharding["shard_duration"] is not None:
            return _count_shards(self.recording, duration_seconds(sharding["shard_duration"]))
        return 1

    def sharded(self, pass_name: str) -> bool:
        return self.num_shards(pass_name) > 1


# ------------------------------------------------------------------------------ operation params
def _without_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def _save_recording(settings: dict) -> dict:
    s = settings["save_recording"]
    params = {"format": s["format"], "dtype": s["dtype"]}
    if s["format"] == "zarr":  # compression options matter (and trigger reruns) only for zarr
        params.update({k: s[k] for k in ("compressor", "compression_level", "shuffle", "channel_chunk_size")})
    return _without_none(params)


_SPARSITY_METHOD_KEYS = {
    "radius": ("radius_um",), "best_channels": ("num_channels",), "closest_channels": ("num_channels",),
    "snr": ("threshold",), "amplitude": ("threshold",), "by_property": ("by_property",),
}


def _estimate_sparsity(settings: dict) -> dict:
    s = settings["sparsity"]
    keys = ("method", "peak_sign", "amplitude_mode", "num_spikes_for_sparsity", "ms_before", "ms_after", "seed")
    params = {k: s[k] for k in keys + _SPARSITY_METHOD_KEYS[s["method"]]}
    params["return_scaled"] = settings["analyzer"]["return_scaled"]  # templates in the analyzer's units
    return params


def _random_spikes(settings: dict) -> dict:
    s = settings["random_spikes"]
    return {k: s[k] for k in ("method", "max_spikes_per_unit", "margin_size", "seed")}


def _waveforms(settings: dict) -> dict:
    s = settings["waveforms"]
    return _without_none({k: s[k] for k in ("ms_before", "ms_after", "dtype")})


def _templates(settings: dict) -> dict:
    s = settings["templates"]
    params = {"operators": s["operators"]}
    if s["source"] == "random_spikes":  # from waveforms, the window is the waveforms'
        params.update(ms_before=s["ms_before"], ms_after=s["ms_after"])
    return params


def _noise_levels(settings: dict) -> dict:
    s = settings["noise_levels"]
    # passed nested: `chunk_duration` would otherwise be taken as the job option of the same name
    return {"method": s["method"], "random_slices_kwargs": {
        k: s[k] for k in ("num_chunks_per_segment", "chunk_duration", "seed")}}


_OPERATION_PARAMS = {
    "save_recording": _save_recording, "estimate_sparsity": _estimate_sparsity, "random_spikes": _random_spikes,
    "waveforms": _waveforms, "templates": _templates, "noise_levels": _noise_levels,
}


# ------------------------------------------------------------------------------ sessions
def build_sessions(config: dict, raw_config: dict) -> dict[str, Session]:
    """The sessions of a config validated by ``config/schema.yaml``.

    Parameters
    ----------
    config : dict
        The config after ``snakemake.utils.validate`` (defaults filled in).
    raw_config : dict
        The config as written, before validation: per-session overrides are taken from it, because
        validation also fills the overrides with the defaults, which would hide the global values.

    Returns
    -------
    sessions : dict
        ``{name: Session}`` in config order.
    """
    check_sharding(raw_config.get("sharding") or {}, "")
    sessions = {}
    for name, session in config["sessions"].items():
        where = f"sessions.{name}"
        recording = check_recording_source(session["recording"], f"{where}.recording")
        sorting = check_sorting_source(session.get("sorting"), f"{where}.sorting", recording_spec=recording)
        overrides = (raw_config.get("sessions", {}).get(name) or {}).get("overrides") or {}
        check_sharding(overrides.get("sharding") or {}, f"{where}.overrides.")
        settings = {section: (merge_sharding if section == "sharding" else deep_merge)(
            config[section], overrides.get(section) or {}) for section in SECTIONS}
        check_settings(settings, where)
        sessions[name] = Session(name, recording, sorting, settings)
        if settings["sharding"]["shard_duration"] is not None:  # the shard counts need the source's length now
            try:
                for pass_name in SHARDED_PASSES:
                    sessions[name].num_shards(pass_name)
            except (ValueError, OSError) as err:
                raise ConfigError(f"{where}: sharding.shard_duration: cannot read the length of {where}.recording "
                                  f"({err})") from None
    return sessions


def duration_seconds(value) -> float:
    """Seconds of a config duration: seconds, or a string such as ``"500ms"``, ``"30s"``, ``"10min"``, ``"1h"``."""
    if isinstance(value, str):
        text = value.strip()
        for unit in ("ms", "min", "h", "s"):  # "ms" and "min" before "s"
            if text.endswith(unit):
                return float(text[: -len(unit)]) * _DURATION_UNITS[unit]
        raise ValueError(f"not a duration: {value!r}")
    return float(value)


class _Timeline:
    """Segment lengths and sampling rate: all ``sicore.count_shards`` reads of a recording."""

    def __init__(self, num_samples: list[int], sampling_frequency: float):
        self.num_samples, self.sampling_frequency = num_samples, sampling_frequency

    def get_num_segments(self) -> int:
        return len(self.num_samples)

    def get_num_samples(self, segment_index: int) -> int:
        return self.num_samples[segment_index]


_timelines: dict[str, _Timeline] = {}


def _timeline(recording: dict) -> _Timeline:
    """The source recording's segment lengths (cached: a neo reader parses headers only once per DAG build)."""
    key = canonical_json(recording)
    if key not in _timelines:
        if recording["type"] == "generated":  # as generate_ground_truth_recording sizes its segments
            fs = float(recording["sampling_frequency"])
            _timelines[key] = _Timeline([int(d * fs) for d in recording["durations"]], fs)
        else:
            from sicore.sources import load_recording

            source = load_recording(recording)
            _timelines[key] = _Timeline([int(source.get_num_samples(i)) for i in range(source.get_num_segments())],
                                        float(source.sampling_frequency))
    return _timelines[key]


def _count_shards(recording: dict, seconds: float) -> int:
    from sicore.sharding_plan import count_shards

    return count_shards(_timeline(recording), seconds)


def merge_sharding(base: dict, override: dict) -> dict:
    """``base`` with a session's ``sharding`` override: giving one of shards / shard_duration replaces the other."""
    merged = deep_merge(base, override)
    for key, other in (("shards", "shard_duration"), ("shard_duration", "shards")):
        if override.get(key) is not None and other not in override:
            merged[other] = None
    return merged


def check_sharding(sharding: dict, where: str) -> None:
    """At most one of ``shards`` and ``shard_duration`` in one mapping (the config or a session's overrides)."""
    if sharding.get("shards") is not None and sharding.get("shard_duration") is not None:
        raise ConfigError(f"{where}sharding: give either sharding.shards ({sharding['shards']!r}) or "
                          f"sharding.shard_duration ({sharding['shard_duration']!r}), not both")


def check_settings(settings: dict, where: str) -> None:
    """Checks across keys that a JSON schema cannot express simply; errors name the keys."""
    templates = settings["templates"]
    if templates["source"] == "waveforms" and not settings["waveforms"]["enabled"]:
        raise ConfigError(f"{where}: templates.source is 'waveforms' but waveforms.enabled is false; "
                          "enable waveforms or set templates.source: random_spikes")
    if templates["source"] == "random_spikes":
        needs_waveforms = [op for op in templates["operators"] if op not in ("average", "std")]
        if needs_waveforms:
            raise ConfigError(f"{where}: templates.operators {needs_waveforms} need templates.source: waveforms "
                              "(from random spikes only average and std are possible)")
    sparsity = settings["sparsity"]
    if sparsity["enabled"] and sparsity["method"] == "by_property" and not sparsity.get("by_property"):
        raise ConfigError(f"{where}: sparsity.by_property is required with sparsity.method: by_property")
    sharding = settings["sharding"]
    check_sharding(sharding, f"{where}: ")
    sharded = sharding["shards"] not in (None, 1) or sharding["shard_duration"] is not None
    if sharded and "noise_levels" in sharding["passes"] and settings["noise_levels"]["seed"] is None \
            and settings["noise_levels"].get("enabled", True):
        # every shard must draw the same random chunks, and the unsharded pass must draw them too
        raise ConfigError(f"{where}: noise_levels.seed is null, but sharding.passes includes noise_levels: "
                          "a sharded noise_levels pass needs a seed (e.g. noise_levels.seed: 0), or remove "
                          "noise_levels from sharding.passes")


def job_options(job: dict) -> str:
    """Job options of every ``sicore`` call (thread counts come from each rule's ``threads``)."""
    options = ["--chunk-duration", str(job["chunk_duration"]),
               "--progress-bar" if job["progress_bar"] else "--no-progress-bar"]
    if job.get("mp_context"):
        options += ["--mp-context", job["mp_context"]]
    return " ".join(options)
