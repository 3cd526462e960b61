"""Readers of acquisition and spike-sorter formats: SpikeGLX, Open Ephys, Phy/Kilosort, MEArec.

neo, h5py and pandas are imported only when a file is read, so importing this package stays cheap.
"""

from .neo_recording import NeoBaseRecordingExtractor
from .spikeglx import SpikeGLXRecordingExtractor, read_spikeglx
from .openephys import (
    OpenEphysBinaryRecordingExtractor,
    OpenEphysLegacyRecordingExtractor,
    detect_openephys_format,
    read_openephys,
)
from .phy_params import read_phy_params
from .phy_kilosort import (
    BasePhyKilosortSortingExtractor,
    KiloSortSortingExtractor,
    PhySortingExtractor,
    read_kilosort,
    read_phy,
)
from .mearec import MEArecRecordingExtractor, MEArecSortingExtractor, read_mearec

__all__ = [
    "NeoBaseRecordingExtractor",
    "SpikeGLXRecordingExtractor", "read_spikeglx",
    "OpenEphysBinaryRecordingExtractor", "OpenEphysLegacyRecordingExtractor", "read_openephys",
    "detect_openephys_format",
    "BasePhyKilosortSortingExtractor", "PhySortingExtractor", "KiloSortSortingExtractor", "read_phy",
    "read_kilosort", "read_phy_params",
    "MEArecRecordingExtractor", "MEArecSortingExtractor", "read_mearec",
]
