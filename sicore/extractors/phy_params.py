"""Safe reading of Phy/Kilosort ``params.py``: parsed as ``key = literal`` lines, never executed or imported.

A ``params.py`` is written by a sorter but lives in a folder anyone may hand us; executing it
would run arbitrary code. Only assignments of Python literals (numbers, strings, booleans,
None, tuples/lists/dicts of those) are read; anything else is skipped with a warning.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path
from typing import Any

# `name = 'quoted text'` where the text is not a valid Python literal (Windows paths such as
# 'C:\Users\...' that MATLAB-written files contain): the text is taken verbatim.
_QUOTED_LINE = re.compile(r"""^\s*([A-Za-z_]\w*)\s*=\s*[rRbB]?(['"])(.*)\2\s*(#.*)?$""")


def read_phy_params(file_path) -> dict[str, Any]:
    """The ``key = value`` literals of a Phy/Kilosort ``params.py``.

    Parameters
    ----------
    file_path : str or Path
        The ``params.py`` file.

    Returns
    -------
    params : dict
        One entry per literal assignment, e.g. ``{"sample_rate": 30000.0, "dtype": "int16", ...}``.
    """
    file_path = Path(file_path)
    try:
        text = file_path.read_text(encoding="utf8", errors="replace")
    except FileNotFoundError:
        raise FileNotFoundError(f"{file_path}: file not found (a Phy/Kilosort folder needs params.py)") from None
    try:
        module = ast.parse(text, filename=str(file_path))
    except SyntaxError:
        return _params_by_line(text, file_path)
    params: dict[str, Any] = {}
    for node in module.body:
        _read_statement(node, params, file_path)
    return params


def _read_statement(node: ast.stmt, params: dict, file_path: Path) -> None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        name = node.targets[0].id
        try:
            params[name] = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            warnings.warn(f"{file_path} line {node.lineno}: the value of {name!r} is not a literal; it is ignored "
                          "(params.py is never executed)", stacklevel=4)
        return
    warnings.warn(f"{file_path} line {node.lineno}: only `name = literal` lines are read; this statement is "
                  "ignored (params.py is never executed)", stacklevel=4)


def _params_by_line(text: str, file_path: Path) -> dict[str, Any]:
    """Fallback for files that are not valid Python as a whole: each line on its own."""
    params: dict[str, Any] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            statement = ast.parse(line.strip())
        except SyntaxError:
            match = _QUOTED_LINE.match(line)
            if match:
                params[match.group(1)] = match.group(3)
            else:
                warnings.warn(f"{file_path} line {lineno}: not a `name = literal` line; it is ignored", stacklevel=3)
            continue
        for node in statement.body:
            node.lineno = lineno
            _read_statement(node, params, file_path)
    return params


__all__ = ["read_phy_params"]
