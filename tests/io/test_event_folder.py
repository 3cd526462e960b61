"""Events: npz folder round trip (structured dtypes per channel, empty segments), corruption."""

import numpy as np
import pytest

from sicore.event import NumpyEvent
from sicore.io import CorruptFolderError, NpzFolderEvent, load_extractor, save_event


@pytest.fixture
def event():
    epochs = np.dtype([("time", "float64"), ("duration", "float64"), ("label", "<U8")])
    seg0 = {"ttl": np.array([0.5, 1.25, 3.0]),
            "stim": np.array([(0.1, 0.5, "on"), (2.0, 0.25, "off")], dtype=epochs)}
    seg1 = {"ttl": np.array([0.75]), "stim": np.zeros(0, dtype=epochs)}
    event = NumpyEvent.from_dict([seg0, seg1])
    event.annotate(source="daq")
    return event


def test_round_trip(tmp_path, event):
    saved = save_event(event, folder=tmp_path / "ev")
    for loaded in (saved, load_extractor(tmp_path / "ev"), load_extractor(tmp_path / "ev" / "events.npz")):
        assert loaded.channel_ids.tolist() == ["ttl", "stim"]
        for s in range(2):
            for channel_id in ("ttl", "stim"):
                np.testing.assert_array_equal(loaded.get_events(channel_id, segment_index=s),
                                              event.get_events(channel_id, segment_index=s))
        assert loaded.get_dtype("stim") == event.get_dtype("stim")
    assert isinstance(saved, NpzFolderEvent) and saved.get_annotation("source") == "daq"


def test_existing_folder_and_missing_member(tmp_path, event):
    save_event(event, folder=tmp_path / "ev")
    with pytest.raises(FileExistsError, match="ev"):
        save_event(event, folder=tmp_path / "ev")
    arrays = dict(np.load(tmp_path / "ev" / "events.npz", allow_pickle=False))
    del arrays["events_seg1_ch1"]
    np.savez(tmp_path / "ev" / "events.npz", **arrays)
    with pytest.raises(CorruptFolderError, match="events.npz.*events_seg1_ch1"):
        load_extractor(tmp_path / "ev")
