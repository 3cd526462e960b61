"""read_mearec on small MEArec HDF5 files (current and pre-1.5 layouts, float and int16 traces)."""

from __future__ import annotations

import multiprocessing
import pickle

import h5py
import numpy as np
import pytest

from sicore.base import BaseExtractor
from sicore.extractors import MEArecRecordingExtractor, MEArecSortingExtractor, read_mearec
from sicore.extractors.mearec import traces_time_axis

from extractor_files import write_mearec


@pytest.mark.parametrize("which", ["new", "old"])
def test_recording_traces_both_layouts(mearec, which):
    recording, _ = read_mearec(getattr(mearec, which))
    assert isinstance(recording, MEArecRecordingExtractor)
    assert recording.sampling_frequency == mearec.fs
    assert recording.channel_ids.tolist() == [str(i) for i in range(1, 9)]
    assert recording.get_num_samples() == 3200 and recording.get_dtype() == np.float32
    np.testing.assert_array_equal(recording.get_traces(), mearec.traces)
    np.testing.assert_array_equal(recording.get_traces(start_frame=100, end_frame=900, channel_ids=["7", "2", "5"]),
                                  mearec.traces[100:900, [6, 1, 4]])
    np.testing.assert_array_equal(recording.get_traces(return_scaled=True), mearec.traces)  # float traces are µV
    np.testing.assert_array_equal(recording.get_channel_locations(), mearec.positions[:, 1:])  # the "yz" plane
    assert recording.get_probe().contact_shapes.tolist() == ["square"] * 8
    assert recording.get_annotation("mearec_info")["recordings"]["fs"] == mearec.fs
    assert recording.is_filtered()
    assert recording.get_property("channel_name").tolist() == [f"ch{i}" for i in range(8)]
    assert recording.get_probe().annotations["model_name"] == "tetrode-mea-l"


def test_integer_traces_use_the_file_gain(mearec):
    recording, sorting = read_mearec(mearec.integer)
    assert recording.get_dtype() == np.int16
    np.testing.assert_array_equal(recording.get_traces(), mearec.int_traces)
    np.testing.assert_allclose(recording.get_traces(return_scaled=True), mearec.int_traces * 0.5)
    assert sorting.unit_ids.tolist() == ["#0"]


def test_ground_truth_sorting(mearec):
    sorting = MEArecSortingExtractor(mearec.new)
    assert sorting.unit_ids.tolist() == ["#0", "#1", "#2"] and sorting.sampling_frequency == mearec.fs
    for unit_index, expected in enumerate(mearec.spike_samples):
        np.testing.assert_array_equal(sorting.get_unit_spike_train(f"#{unit_index}"), expected)
    assert sorting.get_property("cell_type").tolist() == ["L5_TTPC1", "L5_MC", "L5_TTPC2"]
    np.testing.assert_allclose(sorting.get_property("fr"), [5.0, 6.0, 7.0])
    np.testing.assert_allclose(sorting.get_property("soma_position")[:, 0], [0.0, 1.0, 2.0])


def test_layout_detection():
    assert traces_time_axis((3200, 8), 8, None) == 0  # shape decides when it can
    assert traces_time_axis((8, 3200), 8, "1.9.0") == 1
    assert traces_time_axis((8, 8), 8, "1.10.0") == 0  # square: the version decides
    assert traces_time_axis((8, 8), 8, b"1.4.0") == 1
    assert traces_time_axis((8, 8), 8, None) == 1
    with pytest.raises(ValueError, match="neither axis matches the 4 channel"):
        traces_time_axis((8, 3200), 4, None)


def test_provenance_pickle_and_relative_paths(mearec):
    recording, sorting = read_mearec(mearec.new)
    for obj in (recording, sorting):
        assert obj.to_dict()["kwargs"] == {"file_path": str(mearec.new)}
        again = BaseExtractor.from_dict(obj.to_dict(relative_to=mearec.new.parent), base_folder=mearec.new.parent)
        assert type(again) is type(obj)
    again = pickle.loads(pickle.dumps(recording))
    np.testing.assert_array_equal(again.get_traces(end_frame=10), mearec.traces[:10])
    assert pickle.loads(pickle.dumps(sorting)).get_unit_spike_train("#1").tolist() == mearec.spike_samples[1].tolist()


def _read_in_child(recording, queue):
    queue.put(recording.get_traces(start_frame=5, end_frame=15))


def test_reads_after_fork_reopen_the_file(mearec):
    recording, _ = read_mearec(mearec.new)
    recording.get_traces(end_frame=4)  # the parent opened the HDF5 file
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(recording, queue))
    child.start()
    traces = queue.get(timeout=30)
    child.join(timeout=30)
    np.testing.assert_array_equal(traces, mearec.traces[5:15])


def test_errors(mearec, tmp_path):
    with pytest.raises(FileNotFoundError, match="file_path"):
        read_mearec(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_mearec(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["something"] = 1
    with pytest.raises(ValueError, match="no 'recordings' entry"):
        MEArecRecordingExtractor(other)
    with pytest.raises(ValueError, match="no 'info' entry"):
        MEArecSortingExtractor(other)
    bad = write_mearec(tmp_path / "bad.h5", mearec.traces[:, :5], mearec.positions, [], fs=mearec.fs)
    with pytest.raises(ValueError, match="neither axis matches the 8 channel positions"):
        MEArecRecordingExtractor(bad)
    assert MEArecSortingExtractor(bad).get_num_units() == 0
