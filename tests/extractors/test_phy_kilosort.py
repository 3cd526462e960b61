"""read_phy / read_kilosort on small real Phy/Kilosort folders, and the safe params.py parser."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from sicore.base import BaseExtractor
from sicore.extractors import KiloSortSortingExtractor, PhySortingExtractor, read_kilosort, read_phy, read_phy_params
from sicore.io.safe_files import CorruptFolderError

from extractor_files import write_phy_folder


def _trains(sorting):
    return {u: sorting.get_unit_spike_train(u).tolist() for u in sorting.unit_ids.tolist()}


def _expected_trains(phy, clusters):
    return {c: np.sort(phy.times[phy.clusters == c]).tolist() for c in clusters}


def test_phy_spike_trains_and_merged_tables(phy):
    sorting = read_phy(phy.tables)
    assert isinstance(sorting, PhySortingExtractor)
    assert sorting.sampling_frequency == phy.sample_rate and sorting.get_num_segments() == 1
    assert sorting.unit_ids.tolist() == [0, 1, 2, 3, 4]
    assert _trains(sorting) == _expected_trains(phy, range(5))
    assert sorting.get_property("quality").tolist() == ["good", "mua", "noise", "good", "unsorted"]
    assert sorting.get_property("KSLabel").tolist() == ["good", "mua", "good", "mua", "good"]
    np.testing.assert_allclose(sorting.get_property("ContamPct"), [1.5, 2.5, 3.5, 4.5, 5.5])  # a .csv table
    assert sorting.get_property("original_cluster_id").tolist() == [0, 1, 2, 3, 4]
    assert sorting.get_annotation("phy_folder") == str(phy.tables)


def test_phy_cluster_info_is_read_alone_and_lists_units_without_spikes(phy):
    sorting = read_phy(phy.info)
    assert sorting.unit_ids.tolist() == [0, 1, 2, 3, 4, 6]  # cluster 6 is listed with no spike
    assert sorting.count_num_spikes_per_unit()[6] == 0
    assert set(sorting.get_property_keys()) == {"original_cluster_id", "amp", "ch", "depth", "quality", "n_spikes",
                                                "KSLabel"}
    assert sorting.get_property("ch").dtype.kind == "i"
    np.testing.assert_allclose(sorting.get_property("amp"), [10.5, 11.5, 12.5, 13.5, 14.5, 1.0])


def test_phy_exclude_groups_and_minimal_properties(phy):
    sorting = read_phy(phy.info, exclude_cluster_groups=["noise", "mua"])
    assert sorting.unit_ids.tolist() == [0, 3, 4, 6]
    assert _trains(sorting) == {**_expected_trains(phy, [0, 3, 4]), 6: []}
    assert read_phy(phy.tables, exclude_cluster_groups="noise").unit_ids.tolist() == [0, 1, 3, 4]
    minimal = read_phy(phy.info, load_all_cluster_properties=False)
    assert sorted(minimal.get_property_keys()) == ["original_cluster_id", "quality"]


def test_kilosort_filters(phy):
    sorting = read_kilosort(phy.info)
    assert isinstance(sorting, KiloSortSortingExtractor)
    assert sorting.unit_ids.tolist() == [0, 1, 2, 3, 4]  # empty cluster 6 removed
    assert read_kilosort(phy.info, remove_empty_units=False).unit_ids.tolist() == [0, 1, 2, 3, 4, 6]
    good = read_kilosort(phy.tables, keep_good_only=True)
    assert good.unit_ids.tolist() == [0, 2, 4]
    assert _trains(good) == _expected_trains(phy, [0, 2, 4])


def test_spike_templates_when_clusters_are_missing(phy, tmp_path):
    folder = write_phy_folder(tmp_path / "ks", phy.times, None, spike_templates=phy.clusters)
    sorting = read_kilosort(folder)
    assert sorting.unit_ids.tolist() == [0, 1, 2, 3, 4]
    assert _trains(sorting) == _expected_trains(phy, range(5))
    assert sorting.get_property_keys() == ["original_cluster_id"]


def test_clusters_missing_from_the_tables_are_kept(phy, tmp_path):
    clusters = phy.clusters.copy()
    clusters[:4] = 9
    folder = write_phy_folder(tmp_path / "extra", phy.times, clusters, tables={"cluster_group.tsv": "cluster_id\tgroup\n0\tgood\n"})
    sorting = read_phy(folder)
    assert 9 in sorting.unit_ids.tolist() and sorting.count_num_spikes_per_unit()[9] == 4
    assert sorting.get_property("quality").tolist()[0] == "good"
    assert sorting.get_property("quality").tolist()[-1] == ""


def test_si_unit_id_column_gives_unit_ids(phy, tmp_path):
    table = "cluster_id\tsi_unit_id\tgroup\n" + "".join(f"{c}\t{100 + c}\tgood\n" for c in range(5))
    folder = write_phy_folder(tmp_path / "si", phy.times, phy.clusters, tables={"cluster_info.tsv": table})
    sorting = read_phy(folder)
    assert sorting.unit_ids.tolist() == [100, 101, 102, 103, 104]
    assert sorting.get_property("original_cluster_id").tolist() == [0, 1, 2, 3, 4]
    assert sorting.get_unit_spike_train(102).tolist() == _expected_trains(phy, [2])[2]


def test_provenance_and_pickle(phy):
    sorting = read_phy(phy.info, exclude_cluster_groups=("noise",))
    d = sorting.to_dict()
    assert d["kwargs"] == {"folder_path": str(phy.info), "exclude_cluster_groups": ["noise"],
                           "load_all_cluster_properties": True}
    for again in (BaseExtractor.from_dict(d), pickle.loads(pickle.dumps(sorting))):
        assert again.unit_ids.tolist() == sorting.unit_ids.tolist()
        assert _trains(again) == _trains(sorting)
        assert again.get_property("quality").tolist() == sorting.get_property("quality").tolist()
    ks = read_kilosort(phy.tables, keep_good_only=True)
    assert BaseExtractor.from_dict(ks.to_dict()).unit_ids.tolist() == [0, 2, 4]


def test_params_py_is_never_executed(phy, tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "evil"
    shutil.copytree(phy.tables, folder)
    (folder / "params.py").write_text(
        f"import os\n"
        f"os.system('touch {marker}')\n"
        f"__import__('os').system('touch {marker}')\n"
        f"dat_path = __import__('os').system('touch {marker}')\n"
        f"sample_rate = 30000.0\n"
    )
    with pytest.warns(UserWarning, match="never executed"):
        sorting = read_phy(folder)
    assert not marker.exists()
    assert sorting.sampling_frequency == 30000.0
    # a sample rate that is code is refused, not run
    (folder / "params.py").write_text(f"sample_rate = __import__('os').system('touch {marker}') or 30000\n")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="sample_rate must be a positive number"):
        read_phy(folder)
    assert not marker.exists()


def test_params_literals_and_windows_paths(tmp_path):
    params = tmp_path / "params.py"
    params.write_text("dat_path = r'C:\\data\\rec.bin'\nn_channels_dat = 385\ndtype = 'int16'\noffset = 0\n"
                      "sample_rate = 30000.\nhp_filtered = False\n# comment\nchannels = [0, 1, 2]\n")
    assert read_phy_params(params) == {"dat_path": "C:\\data\\rec.bin", "n_channels_dat": 385, "dtype": "int16",
                                       "offset": 0, "sample_rate": 30000.0, "hp_filtered": False,
                                       "channels": [0, 1, 2]}
    # MATLAB-written files hold Windows paths that are not valid Python ('\U' escapes): read line by line
    params.write_text("dat_path = 'C:\\Users\\me\\rec.bin'\nsample_rate = 25000\n")
    assert read_phy_params(params) == {"dat_path": "C:\\Users\\me\\rec.bin", "sample_rate": 25000}


def test_folder_errors(phy, tmp_path):
    with pytest.raises(FileNotFoundError, match="folder_path"):
        read_phy(tmp_path / "missing")
    folder = tmp_path / "broken"
    shutil.copytree(phy.tables, folder)
    (folder / "params.py").unlink()
    with pytest.raises(FileNotFoundError, match="params.py"):
        read_phy(folder)
    shutil.copy(phy.tables / "params.py", folder / "params.py")
    (folder / "params.py").write_text("dtype = 'int16'\n")
    with pytest.raises(ValueError, match="params.py: sample_rate must be a positive number, got None"):
        read_phy(folder)
    shutil.copy(phy.tables / "params.py", folder / "params.py")
    np.save(folder / "spike_clusters.npy", phy.clusters[:-1])
    with pytest.raises(ValueError, match=r"spike_clusters.npy: 299 entries for 300 spikes"):
        read_phy(folder)
    (folder / "spike_clusters.npy").unlink()
    with pytest.raises(FileNotFoundError, match="neither spike_clusters.npy nor spike_templates.npy"):
        read_phy(folder)
    np.save(folder / "spike_clusters.npy", phy.clusters)
    np.save(folder / "spike_times.npy", np.array([object()] * 300, dtype=object), allow_pickle=True)
    with pytest.raises(CorruptFolderError, match="never unpickles"):
        read_phy(folder)
    np.save(folder / "spike_times.npy", phy.times + 0.5)
    with pytest.raises(ValueError, match="sample indices"):
        read_phy(folder)
    np.save(folder / "spike_times.npy", phy.times)
    (folder / "cluster_group.tsv").write_text("cluster_id\tgroup\n0\tgood\n0\tmua\n")
    with pytest.raises(ValueError, match="cluster_group.tsv: cluster_id must hold unique integers"):
        read_phy(folder)
    (folder / "cluster_group.tsv").unlink()
    (folder / "cluster_KSLabel.tsv").unlink()
    with pytest.raises(ValueError, match="keep_good_only needs the 'KSLabel' column"):
        read_kilosort(folder, keep_good_only=True)
    with pytest.raises(ValueError, match="exclude_cluster_groups needs the 'group' column"):
        read_phy(folder, exclude_cluster_groups=["noise"])
