"""Cluster tables of Phy/Kilosort folders (``cluster_info.tsv``, ``cluster_group.tsv``, ``cluster_KSLabel.tsv``, ...).

``cluster_info.tsv`` (written by Phy, the union of all the others) is read alone when present;
otherwise every ``cluster_*.tsv`` / ``cluster_*.csv`` is merged on ``cluster_id``. The separator
is taken from each file's header line (old Phy wrote tab-separated ``.csv`` files).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def read_cluster_tables(folder: Path):
    """One pandas DataFrame indexed by ``cluster_id`` with every column of the folder's cluster tables.

    Returns None when the folder has no usable table. A column present in several tables keeps the
    first file's values (files in name order), filling its gaps from the others.
    """
    import pandas as pd

    info = folder / "cluster_info.tsv"
    files = [info] if info.is_file() else sorted(
        p for p in folder.iterdir() if p.name.startswith("cluster_") and p.suffix in (".tsv", ".csv") and p.is_file()
    )
    merged = None
    for file_path in files:
        table = _read_table(file_path, pd)
        if table is None:
            continue
        merged = table if merged is None else merged.combine_first(table)[
            list(merged.columns) + [c for c in table.columns if c not in merged.columns]]
    return merged


def _read_table(file_path: Path, pd):
    try:
        with open(file_path, encoding="utf8", errors="replace") as f:
            header = f.readline()
        sep = "\t" if "\t" in header else ","
        table = pd.read_csv(file_path, sep=sep)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        warnings.warn(f"{file_path}: cannot be read as a cluster table ({err}); it is ignored", stacklevel=3)
        return None
    table.columns = [str(c).strip() for c in table.columns]
    if "cluster_id" not in table.columns:
        if "id" in table.columns:  # some tools name the key column "id"
            table = table.rename(columns={"id": "cluster_id"})
        else:
            warnings.warn(f"{file_path}: no cluster_id column; the table is ignored", stacklevel=3)
            return None
    ids = pd.to_numeric(table["cluster_id"], errors="coerce")
    if ids.isna().any() or not np.all(np.mod(ids, 1) == 0) or ids.duplicated().any():
        raise ValueError(f"{file_path}: cluster_id must hold unique integers")
    table["cluster_id"] = ids.astype(np.int64)
    return table.set_index("cluster_id")


def column_values(table, column: str, cluster_ids: np.ndarray) -> np.ndarray:
    """Values of ``column`` for ``cluster_ids`` as a plain numpy array.

    Clusters missing from the table get NaN (numbers) or "" (text); integer and boolean columns
    stay integer/boolean when no cluster is missing.
    """
    series = table[column].reindex(cluster_ids)
    values = series.to_numpy()
    kind = series.dtype.kind
    if kind in "iubf":
        return values
    if series.isna().all():
        return np.full(cluster_ids.size, np.nan)
    numeric = _as_number(series)
    if numeric is not None:
        return numeric
    return np.array(["" if (isinstance(v, float) and np.isnan(v)) or v is None else str(v) for v in values])


def _as_number(series):
    import pandas as pd

    converted = pd.to_numeric(series, errors="coerce")
    if converted.notna().sum() != series.notna().sum():
        return None
    return converted.to_numpy(dtype=np.float64)


__all__ = ["read_cluster_tables", "column_values"]
