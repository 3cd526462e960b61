"""Fixtures of the analyzer tests (data helpers live in analyzer_data.py)."""

import pytest

from analyzer_data import make_pair


@pytest.fixture
def pair():
    return make_pair()
