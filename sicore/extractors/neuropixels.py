"""Attaching a Neuropixels probe built by probeinterface, and the metadata that comes with it.

A probe that cannot be built (unknown part number, unusual metadata) never stops the traces from
being read: the recording is returned without locations and a warning says why.
"""

from __future__ import annotations

import warnings

import numpy as np


def attach_probe(recording, make_probe, source: str, band: str | None = None) -> bool:
    """Build a probe with ``make_probe()`` and attach it in place; warn and return False on failure.

    Parameters
    ----------
    recording : BaseRecording
        Receives the probe (every channel must be wired to a contact).
    make_probe : callable
        Returns a wired probeinterface Probe, or None when the file describes none.
    source : str
        The metadata file, named in warnings.
    band : "ap" | "lf" | None, default: None
        Neuropixels band of the stream, for the saturation threshold annotation.
    """
    try:
        probe = make_probe()
    except Exception as err:  # probeinterface raises bare Exceptions/AssertionErrors on unsupported metadata
        warnings.warn(f"{source}: could not build the probe ({type(err).__name__}: {err}); channel locations "
                      "are not set", stacklevel=3)
        return False
    if probe is None:
        return False
    num_channels = recording.get_num_channels()
    if probe.get_contact_count() != num_channels:
        warnings.warn(f"{source}: the probe has {probe.get_contact_count()} contacts for {num_channels} channels; "
                      "it is not attached", stacklevel=3)
        return False
    recording.set_probe(probe, in_place=True)
    _set_neuropixels_extras(recording, probe, band)
    return True


def _set_neuropixels_extras(recording, probe, band: str | None) -> None:
    """``inter_sample_shift`` (per channel) and ``saturation_threshold_uV`` from the probe's ADC description."""
    sample_order = probe.contact_annotations.get("adc_sample_order", None)
    per_adc = probe.annotations.get("num_channels_per_adc", None)
    if sample_order is not None and per_adc:
        # Channels of one ADC are digitised one after the other within a sample period: NP1.0 ADCs
        # spend 13 cycles on their 12 channels, NP2.0 ADCs 16 cycles on 16 channels.
        num_cycles = per_adc + 1 if per_adc == 12 else per_adc
        recording.set_property("inter_sample_shift", np.asarray(sample_order, dtype=np.float64) / num_cycles)
    gain = probe.annotations.get(f"{band}_gain", None) if band in ("ap", "lf") else None
    vpp = probe.annotations.get("adc_range_vpp", None)
    if gain and vpp:
        recording.annotate(saturation_threshold_uV=float(vpp) / 2 / float(gain) * 1e6)


__all__ = ["attach_probe"]
