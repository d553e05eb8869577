"""Every Lambda test talks to moto (or a botocore Stubber where moto lacks the call), never to AWS."""

from __future__ import annotations

import pytest
from moto import mock_aws
from moto.sagemaker import models as sagemaker_models

from tests.lambda_cleanup import moto_clients
from tests.lambda_promotion import make_world


@pytest.fixture
def aws(monkeypatch):
    # moto 5.2.5 stores an endpoint config's ARN as a 1-tuple (`self.arn = (arn,)`), so the tagging API
    # reports "('arn:...',)" for it. Real AWS returns the ARN; give moto's object the plain string.
    original = sagemaker_models.FakeEndpointConfig.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.arn = self.endpoint_config_arn

    monkeypatch.setattr(sagemaker_models.FakeEndpointConfig, "__init__", init)
    with mock_aws():
        yield


@pytest.fixture
def clients(aws):
    """The clean-up hook's clients against moto; its own stack reports DELETE_IN_PROGRESS."""
    return moto_clients()


@pytest.fixture
def world(aws):
    """The promotion hook's bucket, topic, an execution of ragops-dev-rag and its passing report, in moto."""
    return make_world()
