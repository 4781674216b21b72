"""Every test under tests/integration is marked ``integration`` (it needs a real broker).

``pytest -m "not integration"`` runs the rest without a broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.harness import Cluster

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The hook sees the whole session's items, not only this directory's: filter by path.
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def cluster(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Cluster]:
    """One test's own world: unique topic prefix and app, its workers killed and its topics
    deleted at the end."""
    world = Cluster(kafka_bootstrap, tmp_path, f"t{uuid.uuid4().hex[:10]}")
    yield world
    world.stop_all()
    world.drop_topics()
