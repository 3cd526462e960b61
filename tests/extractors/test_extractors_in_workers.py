"""The readers inside the chunk executor: worker processes rebuild them from their JSON provenance."""

from __future__ import annotations

import numpy as np
import pytest

import sicore
from sicore.extractors import read_mearec, read_spikeglx
from sicore.io import save_recording

# A spawned worker only knows the classes `import sicore` registers.
pytestmark = pytest.mark.skipif(
    not hasattr(sicore, "read_spikeglx"),
    reason="sicore/__init__.py does not import sicore.extractors yet: spawned workers cannot rebuild its classes",
)


@pytest.mark.parametrize("mp_context", ["spawn", "fork"])
def test_save_spikeglx_and_mearec_with_worker_processes(sglx, mearec, tmp_path, mp_context):
    recording = read_spikeglx(sglx.folder, stream_id="imec0.ap")
    saved = save_recording(recording, tmp_path / "sglx", n_jobs=2, chunk_size=700, mp_context=mp_context)
    for segment_index, written in enumerate(sglx.ap):
        np.testing.assert_array_equal(saved.get_traces(segment_index=segment_index), written[:, :8])
    np.testing.assert_array_equal(saved.get_channel_locations(), recording.get_channel_locations())

    mearec_recording, _ = read_mearec(mearec.new)
    mearec_recording.get_traces(end_frame=3)  # the parent holds an open HDF5 handle before the fork
    saved = save_recording(mearec_recording, tmp_path / "mearec", n_jobs=2, chunk_size=500, mp_context=mp_context)
    np.testing.assert_array_equal(saved.get_traces(), mearec.traces)
