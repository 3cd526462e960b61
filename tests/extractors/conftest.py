"""Small real files in each format, written once per session; the arrays written are kept for checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from extractor_files import (
    np1_settings_xml,
    write_mearec,
    write_openephys_binary,
    write_openephys_legacy,
    write_phy_folder,
    write_spikeglx_stream,
)

SGLX_SEGMENTS = [(3000, 120), (2000, 90000)]  # (num AP samples, firstSample) per gate


@pytest.fixture(scope="session")
def sglx(tmp_path_factory):
    """A SpikeGLX folder: two gates (segments) of an NP1.0 probe, AP and LF streams, 8 saved channels + sync."""
    folder = tmp_path_factory.mktemp("sglx") / "session"
    rng = np.random.default_rng(11)
    ap, lf, meta = [], [], []
    for gate, (n, first) in enumerate(SGLX_SEGMENTS):
        ap.append(rng.integers(-500, 500, size=(n, 9)).astype("int16"))
        meta.append(write_spikeglx_stream(folder, "run", gate, "ap", ap[-1], first_sample=first))
        lf.append(rng.integers(-500, 500, size=(n // 12, 9)).astype("int16"))
        write_spikeglx_stream(folder, "run", gate, "lf", lf[-1], first_sample=first // 12)
    return SimpleNamespace(folder=folder, ap=ap, lf=lf, ap_meta=meta, first_samples=[f for _, f in SGLX_SEGMENTS])


OE_STREAMS = {
    "Neuropix-PXI-100.ProbeA-AP": {
        "sample_rate": 30000.0, "channels": [(f"CH{i + 1}", 0.195, "uV") for i in range(384)],
        "num_samples": [300, 200], "first_sample": [1000, 5000]},
    "Rhythm_FPGA-101.0": {
        "sample_rate": 20000.0,
        "channels": [(f"CH{i + 1}", 0.195, "uV") for i in range(4)] + [("ADC1", 0.00015, "V"), ("ADC2", 0.00015, "V")],
        "num_samples": [400, 250], "first_sample": [0, 3000]},
}


@pytest.fixture(scope="session")
def oe_binary(tmp_path_factory):
    """An Open Ephys 0.6 binary folder: two recordings, an NP1.0 stream (settings.xml) and an Intan-like one with ADCs."""
    folder = tmp_path_factory.mktemp("oe") / "session"
    rng = np.random.default_rng(12)
    written = write_openephys_binary(folder, OE_STREAMS, 2, rng, settings_xml=np1_settings_xml())
    return SimpleNamespace(folder=folder, traces=written, streams=OE_STREAMS)


LEGACY_CHANNELS = [("CH1", 0.195), ("CH2", 0.195), ("CH3", 0.195), ("AUX1", 3.74e-5)]


@pytest.fixture(scope="session")
def oe_legacy(tmp_path_factory):
    """A legacy Open Ephys folder: 3 CH + 1 AUX channels, two segments (files ``_2``)."""
    folder = tmp_path_factory.mktemp("oelegacy") / "session"
    rng = np.random.default_rng(13)
    written = write_openephys_legacy(folder, LEGACY_CHANNELS, [3, 2], [0, 10240], 30000.0, rng)
    return SimpleNamespace(folder=folder, samples=written, first_timestamps=[0, 10240], sample_rate=30000.0)


PHY_TABLES = {
    "cluster_group.tsv": "cluster_id\tgroup\n0\tgood\n1\tmua\n2\tnoise\n3\tgood\n4\tunsorted\n",
    "cluster_KSLabel.tsv": "cluster_id\tKSLabel\n0\tgood\n1\tmua\n2\tgood\n3\tmua\n4\tgood\n",
    "cluster_ContamPct.csv": "cluster_id,ContamPct\n0,1.5\n1,2.5\n2,3.5\n3,4.5\n4,5.5\n",
}
PHY_INFO = (
    "cluster_id\tamp\tch\tdepth\tgroup\tn_spikes\tKSLabel\n"
    "0\t10.5\t1\t20.0\tgood\t40\tgood\n1\t11.5\t2\t40.0\tmua\t40\tmua\n2\t12.5\t0\t0.0\tnoise\t40\tgood\n"
    "3\t13.5\t3\t60.0\tgood\t40\tmua\n4\t14.5\t1\t20.0\tunsorted\t40\tgood\n6\t1.0\t1\t1.0\tgood\t0\tgood\n"
)


@pytest.fixture(scope="session")
def phy(tmp_path_factory):
    """Two Phy/Kilosort folders with the same spikes: one with separate tables, one with cluster_info.tsv."""
    root = tmp_path_factory.mktemp("phy")
    rng = np.random.default_rng(14)
    times = np.sort(rng.integers(0, 60000, 300))
    clusters = rng.integers(0, 5, 300)
    tables = write_phy_folder(root / "tables", times, clusters, tables=PHY_TABLES)
    info = write_phy_folder(root / "info", times, clusters, tables={**PHY_TABLES, "cluster_info.tsv": PHY_INFO})
    return SimpleNamespace(tables=tables, info=info, times=times, clusters=clusters, sample_rate=30000.0)


@pytest.fixture(scope="session")
def mearec(tmp_path_factory):
    """MEArec files: the current layout (samples x channels) and the pre-1.5 one (channels x samples)."""
    root = tmp_path_factory.mktemp("mearec")
    rng = np.random.default_rng(15)
    fs = 32000.0
    traces = rng.normal(scale=20, size=(3200, 8)).astype("float32")
    positions = np.column_stack([np.zeros(8), np.arange(8) % 2 * 15.0, np.arange(8) // 2 * 15.0])
    # MEArec draws continuous times and puts each spike at sample int(time * fs)
    spike_samples = [np.sort(rng.choice(3200, size=n, replace=False)) for n in (5, 9, 3)]
    spike_times = [(s + rng.uniform(0.05, 0.95, s.size)) / fs for s in spike_samples]
    new = write_mearec(root / "new.h5", traces, positions, spike_times, fs=fs, version="1.9.1",
                       celltypes=["L5_TTPC1", "L5_MC", "L5_TTPC2"])
    old = write_mearec(root / "old.h5", traces, positions, spike_times, fs=fs, version=None)
    int_traces = rng.integers(-300, 300, size=(800, 8)).astype("int16")
    integer = write_mearec(root / "int16.h5", int_traces, positions, [spike_times[0][spike_times[0] < 800 / fs]],
                           fs=fs, version="1.10.0", gain_to_uV=0.5)
    return SimpleNamespace(new=new, old=old, integer=integer, traces=traces, int_traces=int_traces,
                           positions=positions, spike_samples=spike_samples, fs=fs)
