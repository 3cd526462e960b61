"""Every public name of the spec is reachable from the lazy top-level package; loading finds every class."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sicore as si
from sicore.base import _EXTRACTOR_MODULES, get_registered_class
from sicore.io.binary import BinaryRecordingExtractor

SPEC = Path("/work/shared/spec/core_module.rst")
REPO = Path(__file__).resolve().parent.parent

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
    "create_sorting_analyzer", "load_sorting_analyzer", "load_waveforms", "extract_waveforms", "load_extractor",
    "SortingAnalyzer", "Templates", "ChannelSparsity", "estimate_sparsity", "compute_sparsity", "read_kilosort",
    "read_mearec", "read_spikeglx", "read_npz_sorting", "get_noise_levels", "get_template_extremum_channel",
]


def _run(script: str) -> str:
    """stdout of ``script`` in a fresh interpreter (this process has imported sicore modules already)."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                          cwd=REPO).stdout


@pytest.mark.parametrize("name", FOUNDATION_NAMES)
def test_name_is_importable_from_top_level(name):
    assert hasattr(si, name), f"sicore.{name} is missing"
    assert name in dir(si) and name in si.__all__
    namespace = {}
    exec(f"from sicore import {name}", namespace)
    assert namespace[name] is getattr(si, name)


def test_spec_names_are_in_the_lazy_table():
    # names the spec uses as si.NAME or imports from spikeinterface(.core)
    if not SPEC.is_file():
        pytest.skip("spec not available")
    text = SPEC.read_text(encoding="utf-8")
    names = set(re.findall(r"\bsi\.([A-Za-z_]\w*)", text))
    for match in re.findall(r"from spikeinterface(?:\.core)? import ([\w, ]+)", text):
        names.update(n.strip() for n in match.split(",") if n.strip())
    assert names, "no names found in the spec"
    assert sorted(names - set(si._LAZY_NAMES)) == []


def test_lazy_table_matches_the_modules():
    # every entry resolves to an object that its module defines or re-exports, and is the same object
    # through sicore.NAME
    for name, module_name in si._LAZY_NAMES.items():
        module = importlib.import_module(module_name)
        assert hasattr(module, name), f"sicore._LAZY_NAMES: {name} is not in {module_name}"
        assert getattr(si, name) is getattr(module, name)
    # nothing is missing: the public names that the subpackages export and the old eager __init__ exposed
    # are all in the table (the subpackages' own helpers, e.g. write_* functions, stay in the subpackages)
    exported = set()
    for package in ("sicore.io", "sicore.analyzer", "sicore.extractors"):
        exported |= set(importlib.import_module(package).__all__)
    internal = {"write_binary_folder", "write_zarr_recording", "get_default_zarr_compressor", "write_npz_sorting",
                "NpzSnippetsExtractor", "NpzFolderSnippets", "NpyFolderSnippets", "NpzEventExtractor",
                "NpzFolderEvent", "save_recording", "save_sorting", "save_snippets", "save_event",
                "get_extension_class", "NeoBaseRecordingExtractor", "detect_openephys_format",
                "BasePhyKilosortSortingExtractor", "read_phy_params"}
    assert sorted(exported - internal - set(si._LAZY_NAMES)) == []
    assert set(si.__all__) == set(si._LAZY_NAMES) | {"__version__"}
    with pytest.raises(AttributeError, match="no_such_name"):
        si.no_such_name  # noqa: B018


def test_import_sicore_is_lazy():
    out = _run(
        "import sys, sicore\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sicore', 'numpy', 'probeinterface', "
        "'matplotlib', 'pandas', 'zarr', 'neo', 'h5py', 'tqdm', 'requests')))\n"
        "rec = sicore.NumpyRecording\n"  # first use imports only what the name needs
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('probeinterface', 'matplotlib', 'pandas', "
        "'zarr', 'neo', 'h5py')))\n"
        "print(sicore.io.__name__, 'NumpyRecording' in dir(sicore))\n"
    )
    first, second, third = out.strip().splitlines()
    assert first == "['sicore', 'sicore.version']"
    assert second == "[]"
    assert third == "sicore.io True"


def test_class_table_equals_the_registered_classes():
    # the loader finds classes through sicore.base._EXTRACTOR_MODULES without `import sicore` importing their
    # modules: the table must list exactly the classes that importing every sicore module registers, each with
    # its defining module
    script = (
        "import importlib, json, pkgutil, sicore\n"
        "from sicore.base import _EXTRACTOR_REGISTRY, _EXTRACTOR_MODULES\n"
        "for m in pkgutil.walk_packages(sicore.__path__, 'sicore.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps({'registered': {k: c.__module__ for k, c in _EXTRACTOR_REGISTRY.items()},\n"
        "                  'table': _EXTRACTOR_MODULES}))\n"
    )
    result = json.loads(_run(script))
    assert result["registered"] == result["table"]


def test_loading_finds_classes_whose_module_is_not_imported(tmp_path):
    # SpikeInterface spellings of classes whose modules a fresh interpreter has not imported
    path = tmp_path / "x.raw"
    np.arange(60, dtype="int16").reshape(20, 3).tofile(path)
    d = BinaryRecordingExtractor(path, 1000.0, "int16", 3).frame_slice(2, 10).to_dict()
    d["class"] = "spikeinterface.core.frameslicerecording.FrameSliceRecording"
    d["kwargs"]["parent_recording"]["class"] = "spikeinterface.core.binaryrecordingextractor.BinaryRecordingExtractor"
    (tmp_path / "rec.json").write_text(json.dumps(d))
    script = (
        "import json, sys\n"
        "from sicore.base import BaseExtractor, get_registered_class\n"
        "assert 'sicore.recording' not in sys.modules and 'sicore.io.binary' not in sys.modules\n"
        f"rec = BaseExtractor.from_dict(json.load(open({str(tmp_path / 'rec.json')!r})))\n"
        "print(type(rec).__name__, rec.get_num_samples(), get_registered_class('NumpyFolderSorting').__module__)\n"
    )
    assert _run(script).split() == ["FrameSliceRecording", "8", "sicore.io.numpy_folder"]
    with pytest.raises(ValueError, match="not a registered sicore class"):
        get_registered_class("os.path.join")
    assert all(module.startswith("sicore.") for module in _EXTRACTOR_MODULES.values())
