"""Every Lambda test talks to moto (or a botocore Stubber where moto lacks the call), never to AWS."""

from __future__ import annotations

import pytest
from moto import mock_aws


@pytest.fixture
def aws():
    with mock_aws():
        yield
