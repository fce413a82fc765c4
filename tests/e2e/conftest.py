import os
import shutil

import pytest

from tests.e2e.lab import Lab


def pytest_collection_modifyitems(config, items):
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [t for t in ("ip",) if shutil.which(t) is None]
    if missing:
        skip = pytest.mark.skip(reason=f"e2e tests need {', '.join(missing)}")
        for item in items:
            if "tests/e2e" in str(item.fspath):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def lab():
    """One lab for the whole e2e session (building it takes a second or two)."""
    with Lab() as lab:
        yield lab
