import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PURGEMIX_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # helper modules (e.g. _stages) importable by spawned workers too

SHARED_DATA = TESTS.parent.parent / "shared" / "data"


@pytest.fixture
def shared_data():
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
