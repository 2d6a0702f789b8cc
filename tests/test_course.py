"""The course folder (course/): JupyterHub starts from course/jupyterhub_config.py and answers its API.

Needs `make course-install` (JupyterHub into the project's environment, configurable-http-proxy into
course/node_modules); skipped, with the reason, without them."""

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browsers import free_port

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "course"
HUB = Path(sys.executable).parent / "jupyterhub"
PROXY = COURSE / "node_modules" / ".bin" / "configurable-http-proxy"


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
    env = {
        **os.environ,
        "VIZKIT_HUB_STATE": str(tmp_path / "state"),
        "VIZKIT_HUB_AUTH": "dummy",
        "VIZKIT_HUB_PASSWORD": "x",
    }
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


@pytest.mark.browser
@pytest.mark.skipif(os.geteuid() != 0, reason="the rehearsal creates local users (useradd): run as root")
@pytest.mark.skipif(not HUB.exists(), reason="JupyterHub is not installed here: make course-install")
@pytest.mark.skipif(
    not shutil.which("chromedriver"), reason="no chromedriver (Debian: apt-get install chromium-driver)"
)
@pytest.mark.skipif(not shutil.which("useradd"), reason="no useradd on this machine")
def test_the_course_rehearsed_end_to_end():
    """course/rehearse.py: release through the exchange, a student logs in with Chromium, fetches, solves and
    submits through her server, another submits unsolved; collect, nbgrader autograde, feedback; asserts
    full marks and zero, both feedback files, and that no user or server is left behind."""
    spec = importlib.util.spec_from_file_location("rehearse", COURSE / "rehearse.py")
    rehearse = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rehearse)
    assert rehearse.main([]) == 0
    for user in (rehearse.TEACHER, rehearse.ALICE, rehearse.BOB):
        assert subprocess.run(["id", user], capture_output=True).returncode != 0  # removed
    assert subprocess.run(["pgrep", "-f", "jupyterhub.singleuser"], capture_output=True).returncode != 0
