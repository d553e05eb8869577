"""The managed llama-server: loopback only, health-checked, keyed, and never left running by its owner."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import requests

from processing.local_llm.models import resolve_weights
from processing.local_llm.server import BINARY_ENV, LlamaServer, LocalServerError, ServerSettings, find_binary
from tests.processing.helpers import REPO_ROOT
from tests.processing.local_llm.processes import llama_servers, wait_until_gone

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def weights():
    return resolve_weights(MODEL).path


def test_serves_on_loopback_only_with_its_key_and_stops(weights) -> None:
    with LlamaServer(find_binary(), weights, MODEL, ServerSettings(context_size=1024, threads=1)) as server:
        pid = server.pid
        assert server.base_url.startswith("http://127.0.0.1:")
        assert requests.get(server.base_url.removesuffix("/v1") + "/health", timeout=5).json() == {"status": "ok"}
        unkeyed = requests.get(server.base_url + "/models", timeout=5)
        keyed = requests.get(
            server.base_url + "/models", headers={"Authorization": f"Bearer {server.api_key}"}, timeout=5
        )
        assert unkeyed.status_code == 401
        assert keyed.json()["data"][0]["id"] == MODEL
    assert wait_until_gone({pid}) == set()


def test_parallel_slots_each_keep_the_configured_context(weights) -> None:
    with LlamaServer(find_binary(), weights, MODEL, ServerSettings(context_size=1024, threads=1, slots=3)) as server:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        props = requests.get(server.base_url.removesuffix("/v1") + "/props", headers=headers, timeout=5).json()
    assert props["total_slots"] == 3
    assert props["default_generation_settings"]["n_ctx"] == 1024


def test_a_server_that_cannot_load_its_model_fails_with_its_log_and_leaves_nothing(tmp_path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    before = llama_servers()
    server = LlamaServer(find_binary(), broken, "broken", ServerSettings(ready_timeout_s=30))
    with pytest.raises(LocalServerError, match="llama-server exited with status") as error:
        server.start()
    assert "broken.gguf" in str(error.value)  # the server's own log names what it could not load
    assert llama_servers() - before == set()


def test_a_missing_binary_is_named(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "no-such-llama-server"))
    with pytest.raises(LocalServerError, match=r"llama-server not found .*no-such-llama-server.*make install"):
        find_binary()


OWNER = textwrap.dedent(
    """
    import sys, time
    from processing.local_llm.models import resolve_weights
    from processing.local_llm.server import LlamaServer, ServerSettings, find_binary
    server = LlamaServer(find_binary(), resolve_weights("smollm2-135m-instruct").path, "m", ServerSettings(threads=1))
    server.start()
    print(server.pid, flush=True)
    time.sleep(600)
    """
)


def test_the_server_dies_with_an_owner_that_is_killed(weights) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(owner.stdout.readline())
        assert pid in llama_servers()
        owner.kill()  # SIGKILL: no finally, no atexit; the kernel's parent-death signal must end the server
        owner.wait(10)
        assert wait_until_gone({pid}) == set()
    finally:
        owner.kill()
        owner.stdout.close()
