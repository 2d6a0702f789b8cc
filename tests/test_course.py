"""The course folder (course/): JupyterHub starts from course/jupyterhub_config.py and answers its API.

Needs `make course-install` (JupyterHub into the project's environment, configurable-http-proxy into
course/node_modules); skipped, with the reason, without them."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
HUB = Path(sys.executable).parent / "jupyterhub"
PROXY = COURSE / "node_modules" / ".bin" / "configurable-http-proxy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return 0, b""


@pytest.mark.skipif(not HUB.exists(), reason="JupyterHub is not installed here: make course-install")
@pytest.mark.skipif(
    not PROXY.exists() and not shutil.which("configurable-http-proxy"),
    reason="configurable-http-proxy is not installed here: make course-install",
)
def test_jupyterhub_starts_from_the_course_config_and_answers_its_api(tmp_path):
    port, hub_port, api_port = free_port(), free_port(), free_port()
    env = {**os.environ, "VIZKIT_HUB_STATE": str(tmp_path / "state"), "VIZKIT_HUB_AUTH": "dummy"}
    command = [str(HUB), "-f", str(COURSE / "jupyterhub_config.py"), "--ip", "127.0.0.1", "--port", str(port),
               f"--JupyterHub.hub_port={hub_port}", f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{api_port}"]  # fmt: skip
    with open(tmp_path / "hub.log", "wb") as log:
        hub = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        start, answer = time.monotonic(), (0, b"")
        while time.monotonic() - start < 30 and answer[0] != 200:
            time.sleep(0.5)
            answer = get(f"http://127.0.0.1:{port}/hub/api/")
        assert answer[0] == 200, (tmp_path / "hub.log").read_text()[-3000:]
        assert "version" in json.loads(answer[1])
        assert (tmp_path / "state" / "jupyterhub.sqlite").exists() and not (COURSE / "state").exists()
    finally:
        os.killpg(hub.pid, signal.SIGTERM)  # the hub stops the proxy it started
        try:
            hub.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(hub.pid, signal.SIGKILL)
            hub.wait()
    time.sleep(1)
    assert get(f"http://127.0.0.1:{port}/hub/api/")[0] == 0  # nothing answers any more: the proxy is gone too
