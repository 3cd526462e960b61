"""Every public name of the spec that exists so far is importable from the top-level package."""

import subprocess
import sys

import pytest

import sicore as si

FOUNDATION_NAMES = [
    "BaseRecording", "BaseSorting", "BaseEvent", "BaseSnippets", "BaseRecordingSegment", "BaseSortingSegment",
    "NumpyRecording", "NumpySorting", "SharedMemorySorting", "NumpyEvent", "NumpySnippets",
    "aggregate_channels", "aggregate_units",
    "append_recordings", "concatenate_recordings", "split_recording", "select_segment_recording",
    "append_sortings", "concatenate_sortings", "split_sorting", "select_segment_sorting",
    "generate_recording", "generate_sorting", "generate_snippets", "synthesize_random_firings",
    "clean_refractory_period", "inject_some_duplicate_units", "inject_some_split_units",
    "synthetize_spike_train_bad_isi", "generate_ground_truth_recording",
    "read_binary", "set_global_job_kwargs", "get_global_job_kwargs", "ChunkRecordingExecutor",
]


@pytest.mark.parametrize("name", FOUNDATION_NAMES)
def test_name_is_importable_from_top_level(name):
    assert hasattr(si, name), f"sicore.{name} is missing"


def test_importing_sicore_registers_every_extractor_class():
    # provenance loading only knows classes whose module was imported: `import sicore` must import them all
    script = (
        "import importlib, pkgutil, sicore\n"
        "from sicore.base import _EXTRACTOR_REGISTRY\n"
        "before = set(_EXTRACTOR_REGISTRY)\n"
        "for m in pkgutil.walk_packages(sicore.__path__, 'sicore.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(set(_EXTRACTOR_REGISTRY) - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"extractor classes not registered by `import sicore`: {out}"
