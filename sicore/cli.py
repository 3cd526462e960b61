"""The ``sicore`` command: save recordings and sortings, build a SortingAnalyzer, compute its extensions.

Every workflow rule calls one subcommand; each also works on its own (``sicore COMMAND --help``).

Exit codes: 0 success; 2 a user error (bad argument, missing or corrupt file: one line naming it on
stderr); 1 an unexpected error (with its traceback). ``sicore --traceback COMMAND`` (or the
environment variable ``SICORE_TRACEBACK=1``) prints the traceback of user errors too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

EXIT_USER_ERROR = 2
EXIT_UNEXPECTED = 1

# Exceptions that mean "the input is wrong" rather than "sicore is wrong": the library names the bad
# argument or file in their message (CorruptFolderError and SourceError are ValueErrors).
_USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
                PermissionError, ImportError)

_RECORDING_FORMATS = ("binary", "zarr")
_SORTING_FORMATS = ("numpy_folder", "npz")
_ANALYZER_FORMATS = ("binary_folder", "zarr")
_ZARR_ONLY = ("compressor", "compression_level", "shuffle", "channel_chunk_size")
_COMPRESSORS = ("zstd", "lz4", "lz4hc", "blosclz", "zlib", "none")
_SHUFFLES = {"bit": 2, "byte": 1, "none": 0}  # numcodecs Blosc.BITSHUFFLE / SHUFFLE / NOSHUFFLE


class UserError(ValueError):
    """A bad command-line argument (the message names it)."""


# ------------------------------------------------------------------------------ argument helpers
def n_jobs_argument(text: str) -> int | float:
    """argparse type of ``--n-jobs``: an int, -1, or a float fraction of the cores."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of jobs (e.g. 4, -1, 0.5), got {text!r}") from None
    return int(value) if value.is_integer() else value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _json_value(text: str) -> Any:
    """A parameter value: JSON when it parses (numbers, true/false/null, lists, dicts), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. max_spikes_per_unit=200), got {text!r}")
    return key.strip(), _json_value(value)


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("job options (parallel chunked processing)")
    group.add_argument("--n-jobs", type=n_jobs_argument, default=None, metavar="N",
                       help="worker processes: N, -1 for all cores, a fraction such as 0.5 (default: 1)")
    group.add_argument("--chunk-duration", default=None, metavar="DURATION",
                       help='duration of one chunk, e.g. "1s" or "500ms" (default: "1s")')
    group.add_argument("--progress-bar", action=argparse.BooleanOptionalAction, default=None,
                       help="show progress bars (default: when stderr is a terminal)")
    group.add_argument("--mp-context", choices=("fork", "spawn", "forkserver"), default=None,
                       help="start method of worker processes (default: fork on Linux)")


def _add_params_options(parser: argparse.ArgumentParser, example: str) -> None:
    group = parser.add_argument_group("operation parameters")
    group.add_argument("-p", "--param", dest="param_list", action="append", type=_key_value, default=[],
                       metavar="KEY=VALUE", help=f"one parameter, VALUE parsed as JSON when it can be (e.g. {example}); "
                       "repeatable")
    group.add_argument("--params", type=_json_dict, default=None, metavar="JSON",
                       help="parameters as a JSON object (KEY=VALUE options and named options take precedence)")


def _job_kwargs(args) -> dict:
    progress = args.progress_bar if args.progress_bar is not None else sys.stderr.isatty()
    job = {"n_jobs": args.n_jobs, "chunk_duration": args.chunk_duration, "progress_bar": progress,
           "mp_context": args.mp_context}
    return {k: v for k, v in job.items() if v is not None}


def _params(args, **named) -> dict:
    """``--params`` overlaid with ``-p`` pairs and with the command's named options that were given."""
    params = dict(args.params or {})
    params.update(dict(args.param_list))
    params.update({k: v for k, v in named.items() if v is not None})
    return params


def _existing(path: str, what: str) -> Path:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what}: {path} does not exist")
    return Path(path)


def _say(message: str) -> None:
    print(message, flush=True)


def _timed(start: float) -> str:
    return f"{time.perf_counter() - start:.1f} s"


# ------------------------------------------------------------------------------ commands
def cmd_save_recording(args) -> None:
    from .io.save import save_recording
    from .sources import load_source_argument

    params = _params(args, format=args.format, dtype=args.dtype, compressor=args.compressor,
                     compression_level=args.compression_level, shuffle=args.shuffle,
                     channel_chunk_size=args.channel_chunk_size)
    fmt = params.pop("format", "binary")
    if fmt not in _RECORDING_FORMATS:
        raise UserError(f"--format: expected one of {list(_RECORDING_FORMATS)}, got {fmt!r}")
    unknown = sorted(set(params) - {"dtype", *_ZARR_ONLY})
    if unknown:
        raise UserError(f"parameter {unknown[0]!r}: unknown; save-recording takes format, dtype, "
                        f"{', '.join(_ZARR_ONLY)}")
    save_kwargs: dict[str, Any] = {"overwrite": args.overwrite}
    if params.get("dtype") is not None:
        save_kwargs["dtype"] = params["dtype"]
    zarr_options = {k: params[k] for k in _ZARR_ONLY if params.get(k) is not None}
    if fmt == "zarr":
        save_kwargs.update(_zarr_codec_kwargs(zarr_options))
    elif zarr_options:
        raise UserError(f"--{next(iter(zarr_options)).replace('_', '-')}: only applies to --format zarr")
    start = time.perf_counter()
    recording = load_source_argument(args.source, "recording")
    saved = save_recording(recording, folder=args.output, format=fmt, **save_kwargs, **_job_kwargs(args))
    _say(f"saved {_describe_recording(saved)} as {fmt} to {args.output} in {_timed(start)}")


def _zarr_codec_kwargs(options: dict) -> dict:
    kwargs: dict[str, Any] = {}
    if "channel_chunk_size" in options:
        kwargs["channel_chunk_size"] = _checked_int(options["channel_chunk_size"], "--channel-chunk-size", 1)
    name = options.get("compressor", "zstd")
    if name not in _COMPRESSORS:
        raise UserError(f"--compressor: expected one of {list(_COMPRESSORS)}, got {name!r}")
    if name == "none":
        kwargs["compressor"] = None
        return kwargs
    level = _checked_int(options.get("compression_level", 5), "--compression-level", 0, 9)
    shuffle = options.get("shuffle", "bit")
    if shuffle not in _SHUFFLES:
        raise UserError(f"--shuffle: expected one of {list(_SHUFFLES)}, got {shuffle!r}")
    from numcodecs import Blosc, Zlib

    kwargs["compressor"] = Zlib(level=level) if name == "zlib" else Blosc(cname=name, clevel=level,
                                                                           shuffle=_SHUFFLES[shuffle])
    return kwargs


def _checked_int(value, option: str, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or \
            (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise UserError(f"{option}: expected an integer {bounds}, got {value!r}")
    return value


def cmd_save_sorting(args) -> None:
    from .io.save import save_sorting
    from .sources import load_source_argument

    start = time.perf_counter()
    sorting = load_source_argument(args.source, "sorting")
    saved = save_sorting(sorting, folder=args.output, format=args.format, overwrite=args.overwrite)
    _say(f"saved {_describe_sorting(saved)} as {args.format} to {args.output} in {_timed(start)}")


def _write_json_atomically(output: Path, data: Any) -> None:
    from .io.safe_files import write_json

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    write_json(tmp, data)
    os.replace(tmp, output)  # atomic: a killed run leaves no half-written file


def cmd_estimate_sparsity(args) -> None:
    from .sources import load_source_argument
    from .sparsity import _estimate_sparsity_and_main, estimate_sparsity

    params = _params(args, method=args.method, radius_um=args.radius_um, num_channels=args.num_channels,
                     threshold=args.threshold, peak_sign=args.peak_sign)
    _check_keywords(estimate_sparsity, params, "estimate-sparsity", exclude=("sorting", "recording", "noise_levels",
                                                                            "main_channel_indices"))
    start = time.perf_counter()
    recording = load_source_argument(args.recording, "recording")
    sorting = load_source_argument(args.sorting, "sorting")
    # the same pass gives each unit's main channel (the extremum channel of the estimated templates), which
    # create-analyzer --main-channels then stores without a pass of its own
    sparsity, main = _estimate_sparsity_and_main(sorting, recording, **params, **_job_kwargs(args))
    output = Path(args.output)
    _write_json_atomically(output, sparsity.to_dict())
    if args.main_channels:
        import numpy as np

        main_ids = None if main is None else np.asarray(recording.channel_ids)[main]
        _write_json_atomically(Path(args.main_channels), {"unit_ids": sorting.unit_ids, "main_channel_ids": main_ids})
    mean = sparsity.mask.sum(axis=1).mean() if sparsity.mask.size else 0.0
    _say(f"sparsity of {len(sparsity.unit_ids)} units ({mean:.1f} of {len(sparsity.channel_ids)} channels per unit "
         f"on average) written to {output} in {_timed(start)}")


def _check_keywords(function: Callable, params: dict, command: str, exclude: tuple[str, ...] = ()) -> None:
    import inspect

    known = [n for n, p in inspect.signature(function).parameters.items()
             if p.kind is p.POSITIONAL_OR_KEYWORD and n not in exclude]
    unknown = [k for k in params if k not in known]
    if unknown:
        raise UserError(f"parameter {unknown[0]!r}: unknown for {command}; its parameters are {known}")


def cmd_create_analyzer(args) -> None:
    from .analyzer import create_sorting_analyzer
    from .io.safe_files import read_json
    from .sources import load_source_argument
    from .sparsity import ChannelSparsity

    fmt = args.format or ("zarr" if args.output.rstrip("/").endswith(".zarr") else "binary_folder")
    sparsity_options = _params(args)
    if args.sparsity and (args.dense or sparsity_options):
        raise UserError("--sparsity: give a sparsity file, or --dense, or estimation parameters, not several")
    if args.dense and sparsity_options:
        raise UserError(f"parameter {next(iter(sparsity_options))!r}: sparsity parameters need sparsity (not --dense)")
    start = time.perf_counter()
    recording = load_source_argument(args.recording, "recording")
    sorting = load_source_argument(args.sorting, "sorting")
    kwargs: dict[str, Any] = {"sparse": not args.dense}
    if args.sparsity:
        try:
            kwargs["sparsity"] = ChannelSparsity.from_dict(read_json(_existing(args.sparsity, "--sparsity")))
        except (TypeError, ValueError) as err:
            raise UserError(f"--sparsity: {args.sparsity} is not a sparsity file ({err})") from None
    elif sparsity_options:
        kwargs["sparsity_kwargs"] = sparsity_options
    main_channel_ids = _main_channel_ids(args.main_channels, sorting) if args.main_channels else None
    if main_channel_ids is not None:
        # the sorting property create_sorting_analyzer stores as the units' main channels
        sorting.set_property("main_channel_id", main_channel_ids)
    analyzer = create_sorting_analyzer(sorting, recording, format=fmt, folder=args.output,
                                       return_scaled=args.return_scaled, overwrite=args.overwrite,
                                       **kwargs, **_job_kwargs(args))
    sparse = "sparse" if analyzer.is_sparse() else "dense"
    _say(f"created a {sparse} {fmt} analyzer of {analyzer.get_num_units()} units on {analyzer.get_num_channels()} "
         f"channels at {args.output} in {_timed(start)}")


def _main_channel_ids(path: str, sorting) -> list | None:
    """The main channel ids of a ``--main-channels`` file, in the sorting's unit order; None when the file
    has none (create_sorting_analyzer then estimates them)."""
    from .io.safe_files import read_json

    data = read_json(_existing(path, "--main-channels"))
    if not isinstance(data, dict) or "unit_ids" not in data or "main_channel_ids" not in data:
        raise UserError(f"--main-channels: {path} is not a main channels file (keys unit_ids, main_channel_ids)")
    if data["main_channel_ids"] is not None and \
            [str(u) for u in data["unit_ids"]] != [str(u) for u in sorting.unit_ids]:
        raise UserError(f"--main-channels: the units of {path} are not the sorting's")
    return data["main_channel_ids"]


def cmd_compute(args) -> None:
    from .analyzer import get_available_analyzer_extensions
    from .analyzer.analyzer import load_analyzer_deferred

    name = args.extension
    available = get_available_analyzer_extensions()
    if name not in available:
        raise UserError(f"EXTENSION: unknown extension {name!r}; one of {available}")
    if args.parent and name != "templates":
        raise UserError("--from: only applies to the templates extension")
    params = _params(args)
    start = time.perf_counter()
    # the recording and probe are read only if the computation uses them (not random_spikes, nor templates
    # from waveforms): a job's start-up is most of its time on small data
    analyzer = load_analyzer_deferred(_existing(args.analyzer, "ANALYZER"), load_extensions=False)
    _remove_leftovers(Path(args.analyzer) / "extensions", name)
    if args.parent == "random_spikes":
        # compute from the random spikes even when waveforms exist: keep them out of sight
        analyzer.hide_extension("waveforms")
    elif args.parent == "waveforms" and not analyzer.has_extension("waveforms"):
        raise UserError(f"--from waveforms: the analyzer {args.analyzer} has no computed waveforms")
    analyzer.compute(name, **params, **_job_kwargs(args))
    extension = analyzer.get_extension(name)
    _say(f"computed {name} of {args.analyzer} in {_timed(start)} with params {json.dumps(_jsonable(extension.params))}")


def _remove_leftovers(extensions_folder: Path, name: str) -> None:
    """Remove the hidden temporaries (``.NAME.sicore-tmp-*``, ``.NAME.sicore-old-*``) that a killed write or
    delete of extension ``name`` left behind; they never load, they only take space."""
    for path in extensions_folder.glob(f".{name}.sicore-*"):
        shutil.rmtree(path, ignore_errors=True)


def cmd_report(args) -> None:
    try:
        from .report import make_report
    except ImportError as err:
        raise UserError(f"report: needs matplotlib (pip install 'sicore[workflow]'): {err}") from None

    start = time.perf_counter()
    session = args.session_name or Path(args.analyzer.rstrip("/")).parent.name or "session"
    paths = make_report(_existing(args.analyzer, "ANALYZER"), args.output, session, peak_sign=args.peak_sign,
                        n_jobs=args.n_jobs)
    _say(f"report of {session} ({len(paths)} files) written to {args.output} in {_timed(start)}")


def cmd_info(args) -> None:
    path = args.path
    if not path.lstrip().startswith("{"):
        _existing(path, "PATH")
    if _is_analyzer(path):
        summary = _analyzer_summary(path)
    elif path.endswith(".json") and os.path.isfile(path) and _is_sparsity_file(path):
        summary = _sparsity_summary(path)
    else:
        summary = _object_summary(path)
    if args.json:
        print(json.dumps(_jsonable(summary), indent=2))
    else:
        print(_format_summary(summary))


# ------------------------------------------------------------------------------ info helpers
def _is_analyzer(path: str) -> bool:
    folder = Path(path)
    if (folder / "spikeinterface_info.json").is_file():
        try:
            return json.loads((folder / "spikeinterface_info.json").read_text()).get("object") == "SortingAnalyzer"
        except (OSError, ValueError, AttributeError):
            return False
    if (folder / ".zattrs").is_file():
        try:
            info = json.loads((folder / ".zattrs").read_text()).get("spikeinterface_info") or {}
        except (OSError, ValueError, AttributeError):
            return False
        return isinstance(info, dict) and info.get("object") == "SortingAnalyzer"
    return False


def _is_sparsity_file(path: str) -> bool:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "unit_id_to_channel_ids" in data


def _analyzer_summary(path: str) -> dict:
    from .analyzer import load_sorting_analyzer

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        analyzer = load_sorting_analyzer(path, load_extensions=False)
        extensions = {}
        for name in analyzer.get_saved_extension_names():
            extension = analyzer.load_extension(name, missing_ok=True)  # None (and a warning) when incomplete
            if extension is None:
                extensions[name] = {"status": "incomplete"}
            else:
                extensions[name] = {"status": "complete", "params": extension.params,
                                    "runtime_s": (extension.run_info or {}).get("runtime_s")}
    summary = {
        "object": "SortingAnalyzer", "path": path, "format": analyzer.format,
        "num_units": analyzer.get_num_units(), "num_channels": analyzer.get_num_channels(),
        "num_segments": analyzer.get_num_segments(), "sampling_frequency": analyzer.sampling_frequency,
        "duration_s": analyzer.get_total_samples() / analyzer.sampling_frequency,
        "return_scaled": analyzer.return_scaled,
        "recording": type(analyzer.recording).__name__ if analyzer.has_recording() else "none (recordingless)",
        "sparsity": _mask_summary(analyzer.sparsity_mask),
        "extensions": extensions,
    }
    if caught:
        summary["warnings"] = [str(w.message) for w in caught]
    return summary


def _mask_summary(mask) -> str:
    if mask is None:
        return "dense"
    per_unit = mask.sum(axis=1)
    return (f"sparse: {per_unit.mean():.1f} of {mask.shape[1]} channels per unit on average "
            f"(min {per_unit.min()}, max {per_unit.max()})") if mask.size else "sparse (no units)"


def _sparsity_summary(path: str) -> dict:
    from .io.safe_files import read_json
    from .sparsity import ChannelSparsity

    sparsity = ChannelSparsity.from_dict(read_json(path))
    return {"object": "ChannelSparsity", "path": path, "num_units": len(sparsity.unit_ids),
            "num_channels": len(sparsity.channel_ids), "sparsity": _mask_summary(sparsity.mask)}


def _object_summary(path: str) -> dict:
    from .recording import BaseRecording
    from .sources import load_source_argument

    try:
        obj = load_source_argument(path, "recording")
    except ValueError as err:
        if "not a recording" not in str(err):
            raise
        obj = load_source_argument(path, "sorting")
    if isinstance(obj, BaseRecording):
        summary = {
            "object": type(obj).__name__, "path": path, "num_channels": obj.get_num_channels(),
            "sampling_frequency": obj.sampling_frequency, "num_segments": obj.get_num_segments(),
            "durations_s": [obj.get_num_samples(i) / obj.sampling_frequency for i in range(obj.get_num_segments())],
            "dtype": str(obj.get_dtype()), "has_probe": obj.has_probe(),
            "has_scaleable_traces": obj.has_scaleable_traces(),
            "channel_ids": _short_list(obj.channel_ids),
        }
        return summary
    counts = obj.count_num_spikes_per_unit()
    return {
        "object": type(obj).__name__, "path": path, "num_units": obj.get_num_units(),
        "sampling_frequency": obj.sampling_frequency, "num_segments": obj.get_num_segments(),
        "num_spikes": int(sum(counts.values())), "unit_ids": _short_list(obj.unit_ids),
        "spikes_per_unit": {str(k): int(v) for k, v in list(counts.items())[:20]},
    }


def _short_list(values, limit: int = 20) -> list:
    values = [v.item() if hasattr(v, "item") else v for v in list(values)]
    return values if len(values) <= limit else values[:limit] + [f"... ({len(values)} in all)"]


def _format_summary(summary: dict) -> str:
    lines = [f"{summary['object']} at {summary['path']}"]
    for key, value in summary.items():
        if key in ("object", "path", "extensions", "warnings"):
            continue
        lines.append(f"  {key}: {value}")
    if "extensions" in summary:
        lines.append("  extensions:" + ("" if summary["extensions"] else " none"))
        for name, ext in summary["extensions"].items():
            line = f"    {name}: {ext['status']}"
            if ext.get("runtime_s") is not None:
                line += f" ({ext['runtime_s']:.2f} s)"
            if "params" in ext:
                line += f" params {json.dumps(_jsonable(ext['params']), sort_keys=True)}"
            lines.append(line)
    for message in summary.get("warnings", []):
        lines.append(f"  warning: {message}")
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _describe_recording(recording) -> str:
    duration = recording.get_total_duration()
    return (f"a recording of {recording.get_num_channels()} channels, {recording.get_num_segments()} segment(s), "
            f"{duration:.2f} s at {recording.sampling_frequency:g} Hz")


def _describe_sorting(sorting) -> str:
    return (f"a sorting of {sorting.get_num_units()} units, {sorting.to_spike_vector().size} spikes, "
            f"{sorting.get_num_segments()} segment(s)")


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    """The ``sicore`` argument parser (one subparser per command)."""
    from .version import __version__

    parser = argparse.ArgumentParser(
        prog="sicore", description="Save recordings and sortings, build SortingAnalyzers and compute their "
        "extensions (the commands the sicore Snakemake workflow runs).",
        epilog="Sources (RECORDING, SORTING, SOURCE) are a saved folder or file (binary, zarr, npz, numpy folder, "
        "MEArec .h5), or a source as JSON or a .json/.yaml file, e.g. "
        "'{\"type\": \"spikeglx\", \"folder_path\": \"data/run1\", \"stream_id\": \"imec0.ap\"}' (see config/README.md).")
    parser.add_argument("--version", action="version", version=f"sicore {__version__}")
    parser.add_argument("--traceback", action="store_true", help="print the traceback of every error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("info", help="print a summary of a recording, sorting, sparsity file or analyzer",
                            description="Print a summary of a saved recording or sorting, a source, a sparsity "
                            "JSON file, or a SortingAnalyzer (with the status and params of its extensions).")
    p.add_argument("path", metavar="PATH", help="folder, file or JSON source")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_info)

    p = commands.add_parser("save-recording", help="save a recording source as a binary or zarr folder",
                            description="Read a recording source and save it as a SpikeInterface-compatible binary "
                            "folder or zarr store (atomically: a killed run leaves no partial folder).")
    p.add_argument("source", metavar="SOURCE", help="the recording (see 'sicore --help' for sources)")
    p.add_argument("output", metavar="OUTPUT", help="the folder to write ('.zarr' is appended for zarr if missing)")
    p.add_argument("--format", choices=_RECORDING_FORMATS, default=None, help="default: binary")
    p.add_argument("--dtype", default=None, help="dtype of the saved traces (default: the recording's)")
    zarr = p.add_argument_group("zarr compression")
    zarr.add_argument("--compressor", choices=_COMPRESSORS, default=None, help="Blosc codec or zlib (default: zstd)")
    zarr.add_argument("--compression-level", type=int, default=None, metavar="0-9", help="default: 5")
    zarr.add_argument("--shuffle", choices=tuple(_SHUFFLES), default=None, help="Blosc shuffle (default: bit)")
    zarr.add_argument("--channel-chunk-size", type=_positive_int, default=None, metavar="N",
                      help="channels per chunk (default: all)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    _add_params_options(p, "dtype=int16")
    _add_job_options(p)
    p.set_defaults(func=cmd_save_recording)

    p = commands.add_parser("save-sorting", help="save a sorting source as a numpy or npz folder",
                            description="Read a sorting source (npz, numpy folder, Phy, Kilosort, MEArec, generated) "
                            "and save it as a SpikeInterface-compatible folder.")
    p.add_argument("source", metavar="SOURCE", help="the sorting")
    p.add_argument("output", metavar="OUTPUT", help="the folder to write")
    p.add_argument("--format", choices=_SORTING_FORMATS, default="numpy_folder", help="default: numpy_folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    p.set_defaults(func=cmd_save_sorting)

    p = commands.add_parser("estimate-sparsity", help="estimate a sparsity and write it as JSON",
                            description="Estimate which channels each unit uses (sicore.estimate_sparsity) from "
                            "templates of a few random spikes, and write ChannelSparsity.to_dict() as JSON.")
    p.add_argument("recording", metavar="RECORDING")
    p.add_argument("sorting", metavar="SORTING")
    p.add_argument("output", metavar="OUTPUT", help="the JSON file to write")
    p.add_argument("--method", default=None,
                   help="radius (default), best_channels, closest_channels, snr, amplitude, by_property")
    p.add_argument("--radius-um", type=float, default=None, help="for method radius (default: 100)")
    p.add_argument("--num-channels", type=_positive_int, default=None, help="for best/closest_channels")
    p.add_argument("--threshold", type=float, default=None, help="for snr and amplitude")
    p.add_argument("--peak-sign", choices=("neg", "pos", "both"), default=None, help="default: neg")
    p.add_argument("--main-channels", default=None, metavar="FILE",
                   help="also write each unit's main channel (JSON, for create-analyzer --main-channels)")
    _add_params_options(p, "num_spikes_for_sparsity=200")
    _add_job_options(p)
    p.set_defaults(func=cmd_estimate_sparsity)

    p = commands.add_parser("create-analyzer", help="create a SortingAnalyzer folder",
                            description="Pair a sorting with its recording in a SortingAnalyzer saved as a "
                            "binary_folder or zarr store. Sparsity: a file from estimate-sparsity, --dense, or "
                            "estimated here (with -p options of estimate-sparsity).")
    p.add_argument("recording", metavar="RECORDING")
    p.add_argument("sorting", metavar="SORTING")
    p.add_argument("output", metavar="OUTPUT", help="the analyzer folder")
    p.add_argument("--format", choices=_ANALYZER_FORMATS, default=None,
                   help="default: zarr when OUTPUT ends with .zarr, else binary_folder")
    p.add_argument("--sparsity", default=None, metavar="FILE", help="a sparsity JSON file (from estimate-sparsity)")
    p.add_argument("--main-channels", default=None, metavar="FILE",
                   help="the units' main channels (from estimate-sparsity --main-channels; default: estimated "
                   "here in a pass over the recording)")
    p.add_argument("--dense", action="store_true", help="no sparsity: every unit on every channel")
    p.add_argument("--return-scaled", action=argparse.BooleanOptionalAction, default=True,
                   help="work in µV when the recording has gains (default: yes)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT (and its extensions)")
    _add_params_options(p, "radius_um=50")
    _add_job_options(p)
    p.set_defaults(func=cmd_create_analyzer)

    p = commands.add_parser("compute", help="compute one extension of an analyzer",
                            description="Compute an extension (random_spikes, waveforms, templates, noise_levels) "
                            "of a saved analyzer; recomputing an extension deletes the extensions computed from it.")
    p.add_argument("extension", metavar="EXTENSION", help="random_spikes, waveforms, templates or noise_levels")
    p.add_argument("analyzer", metavar="ANALYZER", help="the analyzer folder")
    p.add_argument("--from", dest="parent", choices=("waveforms", "random_spikes"), default=None,
                   help="templates only: compute from the waveforms, or from the random spikes even when waveforms "
                   "exist (default: waveforms when computed)")
    _add_params_options(p, "max_spikes_per_unit=200, operators='[\"average\", \"median\"]'")
    _add_job_options(p)
    p.set_defaults(func=cmd_compute)

    p = commands.add_parser("report", help="write the report of an analyzer (units table, figures)",
                            description="Write a units table (CSV/HTML), figures and an HTML page of an analyzer "
                            "with templates (and noise levels).")
    p.add_argument("analyzer", metavar="ANALYZER")
    p.add_argument("output", metavar="OUTPUT", help="the report folder")
    p.add_argument("--session-name", default=None, help="title of the report (default: the analyzer's parent folder)")
    p.add_argument("--peak-sign", choices=("neg", "pos", "both"), default="neg", help="default: neg")
    p.add_argument("--n-jobs", type=_positive_int, default=1,
                   help="processes drawing the figures: 2 draws two figures at once (default: 1)")
    p.set_defaults(func=cmd_report)

    from .sharding import add_shard_commands  # `sicore shard PASS` / `sicore gather PASS` (sharded passes)

    add_shard_commands(commands)
    return parser


# ------------------------------------------------------------------------------ entry point
def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"sicore: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    """Run the ``sicore`` command; returns the exit code (0 ok, 2 user error, 1 unexpected error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: --help / --version (0) or a usage error (2)
        return int(exit_.code or 0)
    show_traceback = args.traceback or os.environ.get("SICORE_TRACEBACK", "") not in ("", "0")
    warnings.showwarning = _show_warning
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"sicore {args.command}: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS as err:
        if show_traceback:
            traceback.print_exc()
        text = str(err).strip() or type(err).__name__
        first, _, rest = text.partition("\n")
        hint = " (more with --traceback)" if rest else ""
        print(f"sicore {args.command}: error: {first}{hint}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:
        traceback.print_exc()
        print(f"sicore {args.command}: unexpected error (please report it with the traceback above)", file=sys.stderr)
        return EXIT_UNEXPECTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
