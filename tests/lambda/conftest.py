"""Every Lambda test talks to moto (or a botocore Stubber where moto lacks the call), never to AWS."""

from __future__ import annotations

import pytest
from moto import mock_aws

from tests.lambda_cleanup import moto_clients, use_moto_endpoint_config_arns
from tests.lambda_promotion import make_world


@pytest.fixture
def aws(monkeypatch):
    use_moto_endpoint_config_arns(monkeypatch)
    with mock_aws():
        yield


@pytest.fixture
def clients(aws):
    """The clean-up hook's clients against moto; its own stack reports DELETE_IN_PROGRESS."""
    return moto_clients()


@pytest.fixture
def world(aws):
    """The promotion hook's bucket, topic, an execution of ragops-dev-single and its passing report, in moto."""
    return make_world()
