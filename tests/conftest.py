"""Test-wide guards: no AWS credentials, no network model downloads, a fixed region for boto3 clients."""

from __future__ import annotations

import os

import pytest

# A tracking server for the tests that write to MLflow instead of the session's sqlite file (make test-image-mlflow).
TRACKING_URI_ENV = "RAGOPS_TEST_TRACKING_URI"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks `mlflow` every test that writes through the `mlflow_db_uri` fixture, the store that
    `make test-image-mlflow` replaces with a server, so that `-m mlflow` finds new ones too. Tests that start the
    CLI as a process on a store of their own (the console and signal tests) are not marked by this: they test the
    process, on the local client."""
    for item in items:
        if "mlflow_db_uri" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.mlflow)


@pytest.fixture(autouse=True, scope="session")
def _no_llm_server_outlives_the_session():  # type: ignore[no-untyped-def]
    """Fails the session if a test left a local LLM server of this process running (they must close backends)."""
    yield
    from tests.processing.local_llm.processes import children_of

    left = children_of(os.getpid())
    assert not left, f"llama-server processes left running by the tests: {sorted(left)}"


@pytest.fixture(autouse=True, scope="session")
def _offline_aws_environment() -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged MiniLM model, loaded once for every pipeline test that embeds text."""
    from processing.backends.local_embedder import LocalEmbedder

    return LocalEmbedder(progress=False)


@pytest.fixture(scope="session")
def mlflow_db_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The session's tracking store: the server $RAGOPS_TEST_TRACKING_URI names, else a new sqlite file."""
    if uri := os.environ.get(TRACKING_URI_ENV):
        return uri
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def mlflow_store(mlflow_db_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real sqlite MLflow store for the session (tests tell their runs apart by experiment name)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db_uri)
    return mlflow_db_uri


@pytest.fixture(scope="session")
def local_llm():  # type: ignore[no-untyped-def]
    """The embedded LLM (packaged SmolLM2 behind a real llama-server), one server for the whole session."""
    from processing.local_llm.generator import LocalLLMGenerator

    generator = LocalLLMGenerator("smollm2-135m-instruct")
    yield generator
    generator.close()
