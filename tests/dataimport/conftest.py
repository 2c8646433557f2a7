"""Fixtures for import tests (helpers live in `import_support`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from import_support import Files  # noqa: E402


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)
