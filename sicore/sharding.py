"""Sharded passes over one recording: N jobs over time ranges, then one gather job.

The heavy passes (``save_recording``, ``noise_levels``, ``templates`` from the recording, ``waveforms``)
can run as ``num_shards`` independent jobs, each over one contiguous, chunk-aligned time range of the
recording (``plan_shards``), plus a gather job that combines the shards' partial results into exactly
the files the unsharded pass writes. The workflow rules stay thin: one shard rule and one gather rule
per pass, each calling one function (or one ``sicore shard ...`` / ``sicore gather ...`` command).

API
---
``plan_shards(recording, num_shards=None, shard_duration=None, chunk_size=None, **job_kwargs)``
    The deterministic plan: ``Shard(index, num_shards, start, stop, ranges)``.
``shard_<pass>(..., shard_folder, shard_index, num_shards, ...)``
    Writes shard ``shard_index``'s partial result into its own ``shard_folder`` (atomically: hidden
    temporary sibling, ``shard.json`` marker last, rename).
``gather_<pass>(..., shard_folders, num_shards, ...)``
    Checks every shard's marker against the recomputed plan, params and source (a missing, killed or
    foreign shard is an error naming it), then writes the final output atomically.
``add_shard_commands(subparsers)``
    Adds ``shard`` and ``gather`` sub-commands to an argparse CLI.

Identity with the unsharded pass (details in ``sharding_recording`` and ``sharding_analyzer``):
``save_recording`` (binary and zarr), ``noise_levels`` and ``waveforms`` are bit for bit identical;
``templates`` is bit for bit identical for integer cut-outs and otherwise equal to float64 rounding of
regrouped sums (float32 output within 1 ulp; ``std`` + 1e-6 x max |average|).

Safety on shared file systems: a shard job writes only inside its own shard folder and a gather only
inside its temporary final folder, so two jobs never write the same file; partial outputs of a killed
job are hidden temporaries that no reader opens and that the next run of the same job removes; a
resubmitted shard replaces its previous output atomically. With ``remove_shards=True`` (for shard
folders that are Snakemake ``temp()`` outputs) a gather consumes its shards: a failed gather leaves
them missing, so the workflow recomputes them.

Cost: every shard and the gather is one more job (a Python start-up and the imports of its pass,
about 0.2-0.3 s). The gathers are light (noise levels and template sums are small; a zarr save is
assembled with hard links; waveforms are concatenated once) except the binary save, whose gather
writes the traces once (pieces concatenated by threads through reused buffers; a save that is a
plain copy of a binary source is written once by the gather).
Sharding pays when a shard's compute is well above these costs: long recordings, sources that are
expensive to read (lazy preprocessing, compression, remote storage), zarr compression, several nodes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from .cli import n_jobs_argument  # stdlib-only module: the parser stays cheap

# The pass modules (numpy, the analyzer, the io package) are imported when a shard or gather runs, not
# when the CLI builds its parser: `sicore --help` and every other command stay cheap. Their public names
# are still attributes of this module (PEP 562 __getattr__ below).
_LAZY_NAMES = {
    **dict.fromkeys(("ANALYZER_PASSES", "gather_analyzer_pass", "gather_noise_levels", "gather_templates",
                     "gather_waveforms", "shard_analyzer_pass", "shard_noise_levels", "shard_templates",
                     "shard_waveforms"), "sicore.sharding_analyzer"),
    **dict.fromkeys(("PASSES", "SHARD_MARKER", "Shard", "ShardError", "count_shards", "get_shard", "plan_shards",
                     "shard_folder_name"), "sicore.sharding_plan"),
    **dict.fromkeys(("gather_save_recording", "shard_save_recording"), "sicore.sharding_recording"),
}
# The analyzer passes that get `shard PASS` / `gather PASS` commands: sharding_analyzer.ANALYZER_PASSES
# (tests/test_cli.py checks they agree), spelled out so that building the parser imports nothing.
_ANALYZER_PASS_NAMES = ("noise_levels", "templates", "waveforms")


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "PASSES", "SHARD_MARKER", "Shard", "ShardError", "plan_shards", "count_shards", "get_shard",
    "shard_folder_name", "shard_folders", "shard_save_recording", "gather_save_recording", "shard_noise_levels",
    "gather_noise_levels", "shard_templates", "gather_templates", "shard_waveforms", "gather_waveforms",
    "shard_analyzer_pass", "gather_analyzer_pass", "run_shard", "run_gather", "add_shard_commands",
]


def shard_folders(root, num_shards: int) -> list[Path]:
    """``root / shard_folder_name(i, num_shards)`` for every shard, in order (what a gather takes)."""
    from .sharding_plan import shard_folder_name

    return [Path(root) / shard_folder_name(i, num_shards) for i in range(int(num_shards))]


def run_shard(pass_name: str, **kwargs):
    """Run one shard of ``pass_name`` (``shard_save_recording`` or ``shard_analyzer_pass`` keyword arguments)."""
    from .sharding_analyzer import ANALYZER_PASSES, shard_analyzer_pass
    from .sharding_plan import PASSES
    from .sharding_recording import shard_save_recording

    if pass_name == "save_recording":
        return shard_save_recording(**kwargs)
    if pass_name in ANALYZER_PASSES:
        return shard_analyzer_pass(pass_name, **kwargs)
    raise ValueError(f"pass_name must be one of {list(PASSES)}, got {pass_name!r}")


def run_gather(pass_name: str, **kwargs):
    """Run the gather of ``pass_name`` (``gather_save_recording`` or ``gather_analyzer_pass`` keyword arguments)."""
    from .sharding_analyzer import ANALYZER_PASSES, gather_analyzer_pass
    from .sharding_plan import PASSES
    from .sharding_recording import gather_save_recording

    if pass_name == "save_recording":
        return gather_save_recording(**kwargs)
    if pass_name in ANALYZER_PASSES:
        return gather_analyzer_pass(pass_name, **kwargs)
    raise ValueError(f"pass_name must be one of {list(PASSES)}, got {pass_name!r}")


# ------------------------------------------------------------------------------------------ CLI
def _json_params(text: str | None) -> dict:
    """``--params``: JSON text, or ``@file.json``."""
    if text is None:
        return {}
    source = "--params"
    if text.startswith("@"):
        source = text[1:]
        text = Path(source).read_text(encoding="utf8")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: expected a JSON object of parameters, got {type(value).__name__}")
    return value


def _shard_duration(text: str | None):
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text  # "30s", "500ms"


def _job_kwargs(args: argparse.Namespace) -> dict:
    progress = args.progress_bar if args.progress_bar is not None else sys.stderr.isatty()
    job_kwargs = {"n_jobs": args.n_jobs, "progress_bar": progress, "mp_context": args.mp_context,
                  "chunk_size": args.chunk_size,
                  "chunk_duration": None if args.chunk_duration is None else _shard_duration(args.chunk_duration)}
    return {k: v for k, v in job_kwargs.items() if v is not None}


def _save_options(args: argparse.Namespace) -> dict:
    """format, dtype and zarr codec options from ``--params`` and the named options (which take precedence).

    Codec names (``compressor``, ``compression_level``, ``shuffle``) are mapped to codecs exactly as
    ``sicore save-recording`` maps them, so a sharded save writes the same store as an unsharded one.
    """
    options = _json_params(args.params)
    for key in ("format", "dtype", "channel_chunk_size"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    unknown = sorted(set(options) - {"format", "dtype", "compressor", "compression_level", "shuffle",
                                     "channel_chunk_size"})
    if unknown:
        raise ValueError(f"--params: unknown save-recording parameters {unknown}")
    fmt = options.pop("format", None) or "binary"
    result = {"format": fmt, "dtype": options.pop("dtype", None)}
    if options and fmt != "zarr":
        raise ValueError(f"--params: {sorted(options)} only apply to format zarr")
    if set(options) - {"channel_chunk_size"}:
        from .cli import _zarr_codec_kwargs  # the mapping of `sicore save-recording`

        result.update(_zarr_codec_kwargs(options))
    elif "channel_chunk_size" in options:
        result["channel_chunk_size"] = int(options["channel_chunk_size"])
    return result


def _add_common(parser: argparse.ArgumentParser, gather: bool) -> None:
    plan = parser.add_mutually_exclusive_group(required=True)
    plan.add_argument("--num-shards", type=int, help="number of shards")
    plan.add_argument("--shard-duration", help="shard duration instead: seconds or e.g. '30s'")
    if gather:
        parser.add_argument("--shard-folders", nargs="+", required=True, metavar="FOLDER",
                            help="the shard folders, in shard order")
        parser.add_argument("--remove-shards", action="store_true",
                            help="consume the shard folders (only for temporary shard outputs, Snakemake temp())")
    else:
        parser.add_argument("--shard", type=int, required=True, metavar="INDEX", help="shard index, from 0")
        parser.add_argument("--shard-folder", required=True, metavar="FOLDER", help="this shard's output folder")
    group = parser.add_argument_group("job options (the chunking options must be the same for shards and gather)")
    group.add_argument("--n-jobs", type=n_jobs_argument, default=None, metavar="N",
                       help="worker processes: the rule's threads (default: 1)")
    group.add_argument("--chunk-duration", default=None, metavar="DURATION",
                       help='chunk duration of the unsharded pass, e.g. "1s" (default: "1s")')
    group.add_argument("--chunk-size", type=int, default=None, metavar="SAMPLES", help="chunk size in samples instead")
    group.add_argument("--progress-bar", action=argparse.BooleanOptionalAction, default=None,
                       help="show progress bars (default: when stderr is a terminal)")
    group.add_argument("--mp-context", choices=("fork", "spawn", "forkserver"), default=None,
                       help="start method of worker processes")


def _run_save(args: argparse.Namespace, gather: bool) -> int:
    from .sharding_recording import gather_save_recording, shard_save_recording

    common = {"recording": args.recording, "num_shards": args.num_shards,
              "shard_duration": _shard_duration(args.shard_duration), "binary_layout": args.binary_layout,
              **_save_options(args), **_job_kwargs(args)}
    if gather:
        gather_save_recording(shard_folders=args.shard_folders, folder=args.folder, overwrite=args.overwrite,
                              remove_shards=args.remove_shards, **common)
    else:
        shard_save_recording(shard_folder=args.shard_folder, shard_index=args.shard, **common)
    return 0


def _run_analyzer(pass_name: str) -> Callable[[argparse.Namespace, bool], int]:
    def run(args: argparse.Namespace, gather: bool) -> int:
        from .sharding_analyzer import gather_analyzer_pass, shard_analyzer_pass

        common = {"analyzer": args.analyzer, "num_shards": args.num_shards,
                  "shard_duration": _shard_duration(args.shard_duration), "params": _json_params(args.params),
                  "recording": args.recording, **_job_kwargs(args)}
        if getattr(args, "parent", None) == "random_spikes":
            common["from_random_spikes"] = True
        if gather:
            gather_analyzer_pass(pass_name, shard_folders=args.shard_folders, remove_shards=args.remove_shards,
                                 **common)
        else:
            shard_analyzer_pass(pass_name, shard_folder=args.shard_folder, shard_index=args.shard, **common)
        return 0

    return run


def add_shard_commands(subparsers) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Add ``shard`` and ``gather`` commands (one sub-command per pass) to an argparse CLI.

    Each leaf parser sets ``func`` (``args.func(args)`` runs the command and returns 0), so a CLI plugs this in
    with ``add_shard_commands(parser.add_subparsers(dest="command"))`` and dispatches with ``args.func(args)``::

        sicore shard save-recording --recording SRC --shard 2 --num-shards 4 --shard-folder S2 [--format zarr]
        sicore gather save-recording --recording SRC --num-shards 4 --shard-folders S0 S1 S2 S3 --folder OUT
        sicore shard waveforms --analyzer A --shard 2 --num-shards 4 --shard-folder S2 --params '{"ms_before": 1}'
        sicore gather waveforms --analyzer A --num-shards 4 --shard-folders S0 S1 S2 S3 --params '{"ms_before": 1}'

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object ``ArgumentParser.add_subparsers()`` returns.

    Returns
    -------
    shard_parser, gather_parser : argparse.ArgumentParser
        The two added parsers.
    """
    parsers = []
    for kind, gather in (("shard", False), ("gather", True)):
        help_text = ("compute one shard of a heavy pass into its own folder" if not gather
                     else "combine the shards of a heavy pass into its final output")
        parser = subparsers.add_parser(kind, help=help_text, description=help_text)
        passes = parser.add_subparsers(dest="shard_pass", required=True, metavar="PASS")

        save = passes.add_parser("save-recording", help="save a recording (binary or zarr)")
        save.add_argument("--recording", required=True,
                          help="the source recording, as for `sicore save-recording SOURCE` (folder, file or JSON)")
        save.add_argument("--format", choices=["binary", "zarr"], default=None, help="default: binary")
        save.add_argument("--dtype", default=None, help="dtype on disk (default: the recording's)")
        save.add_argument("--channel-chunk-size", type=int, default=None, help="zarr: channels per chunk")
        save.add_argument("--binary-layout", choices=["single_file", "pieces"], default="single_file",
                          help="binary: one raw file per segment, as an unsharded save (default); or the shards' "
                               "pieces kept and joined, so the gather copies nothing (shard and gather must agree)")
        save.add_argument("--params", default=None,
                          help="save-recording parameters as JSON text or @file.json: format, dtype, and for zarr "
                               "compressor, compression_level, shuffle, channel_chunk_size (named options win)")
        if gather:
            save.add_argument("--folder", required=True, help="the saved recording's folder")
            save.add_argument("--overwrite", action="store_true", help="replace an existing folder")
        _add_common(save, gather)
        save.set_defaults(func=lambda args, gather=gather: _run_save(args, gather))

        for pass_name in _ANALYZER_PASS_NAMES:
            sub = passes.add_parser(pass_name.replace("_", "-"), help=f"the {pass_name} extension")
            sub.add_argument("--analyzer", required=True, help="the analyzer folder (binary_folder or zarr)")
            sub.add_argument("--params", default=None,
                             help="the extension's parameters as JSON text or @file.json (noise-levels needs a seed)")
            sub.add_argument("--recording", default=None, help="recording for a recordingless analyzer")
            if pass_name == "templates":
                sub.add_argument("--from", dest="parent", choices=("random_spikes",), default=None,
                                 help="compute from the recording even when the analyzer has waveforms")
            _add_common(sub, gather)
            sub.set_defaults(func=lambda args, gather=gather, run=_run_analyzer(pass_name): run(args, gather))
        parsers.append(parser)
    return parsers[0], parsers[1]


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point: ``python -m sicore.sharding shard|gather PASS ...``."""
    parser = argparse.ArgumentParser(prog="python -m sicore.sharding", description=__doc__.split("\n\n")[0])
    add_shard_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # ShardError is a ValueError: it names the shards to rerun
        print(f"sicore {args.command} {args.shard_pass}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
