"""Every test under tests/integration is marked ``integration`` (it needs a real broker).

``pytest -m "not integration"`` runs the rest without a broker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items, not only this directory's: filter by path.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
