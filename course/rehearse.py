"""The course rehearsed end to end on this machine: python course/rehearse.py [--keep] (as root).

A JupyterHub from course/jupyterhub_config.py on a loopback port, with a teacher and two students created
as local users (useradd, removed afterwards); notebook 05 released through nbgrader's exchange; one student
logs in with headless Chromium as a person would, and fetches, solves and submits through the hub's REST
API and her own server; the other submits the release unsolved; the teacher collects, autogrades with
nbgrader, generates and releases feedback. It asserts the gradebook (full marks, zero) and each student's
feedback in the exchange, and stops every server it started (and removes the users), also on failure.
Fast mode, one torch thread. Prints each step's seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
TEACHER, ALICE, BOB = "vizkit-teacher", "vizkit-alice", "vizkit-bob"
NOTEBOOK = "05_saliency.ipynb"
FAST = {"VIZKIT_FAST": "1", "VIZKIT_OFFLINE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url: str, token: str, method: str = "GET", body: dict | None = None, timeout: float = 120) -> dict:
    """A JSON request to the hub or a user's server with a token; the decoded answer ({} if empty)."""
    data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as r:
        text = r.read()
    return json.loads(text) if text.strip() else {}


def wait_for(what: str, test, timeout: float, every: float = 0.5):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            value = test()
            if value:
                return value
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            pass
        time.sleep(every)
    raise TimeoutError(f"{what}: nothing after {timeout:g} s")


@contextmanager
def users(names: list[str], home: Path):
    """Local accounts for the rehearsal (useradd), removed with their homes afterwards, also on error."""
    made = []
    try:
        for name in names:
            subprocess.run(["useradd", "-m", "-d", str(home / name), "-s", "/bin/bash", name], check=True)
            made.append(name)
        yield
    finally:
        for name in made:
            subprocess.run(["pkill", "-KILL", "-u", name], check=False)
            subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


def user_python(work: Path) -> Path:
    """An interpreter the users may run that sees this environment's packages: the system's Python of the
    same version, in a venv with a .pth to this environment's site-packages (this one may be under /root)."""
    import sysconfig

    base = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not base.exists():
        raise SystemExit(f"the rehearsal needs {base} (the system's Python of this environment's version)")
    env = work / "user-env"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(env)], check=True)
    site = next((env / "lib").glob("python3.*/site-packages"))
    (site / "vizkit-env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env / "bin" / "python"


@contextmanager
def hub(work: Path, port: int, token: str, python: Path, exchange: Path):
    """JupyterHub from the course's config, its state in work; stopped (and the proxy, and every user's
    server) on exit, also on error."""
    env = {**os.environ, **FAST, "VIZKIT_HUB_STATE": str(work / "state"), "VIZKIT_HUB_AUTH": "dummy",
           "VIZKIT_HUB_PASSWORD": "rehearsal", "VIZKIT_HUB_SERVICE_TOKEN": token, "VIZKIT_HUB_PYTHON": str(python),
           "VIZKIT_EXCHANGE": str(exchange), "VIZKIT_HUB_TEACHERS": TEACHER}  # fmt: skip
    command = [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "course" / "jupyterhub_config.py"),
               "--ip", "127.0.0.1", "--port", str(port), f"--JupyterHub.hub_port={free_port()}",
               f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}"]  # fmt: skip
    log = open(work / "hub.log", "wb")  # noqa: SIM115  (closed in finally)
    process = subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_for("the hub's API", lambda: call(f"http://127.0.0.1:{port}/hub/api/", token).get("version"), 60)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the hub stops the proxy and the users' servers
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def nbgrader(*args: str, course: Path, exchange: Path) -> str:
    """An nbgrader command as the teacher (root here) in the course directory."""
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, f"--Exchange.root={exchange}", "--CourseDirectory.course_id=vizkit"],
        cwd=course, env={**os.environ, **FAST}, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def solved(release: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The release with the teacher's solution cells pasted in (what a student who solved it hands in)."""
    source = {
        c.metadata.get("nbgrader", {}).get("grade_id"): c.source
        for c in nbformat.read(ROOT / "notebooks" / NOTEBOOK, 4).cells
    }
    for cell in release.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = source[cell.metadata["nbgrader"]["grade_id"]]
    return release


def log_in_with_chromium(base: str, user: str, shots: Path) -> None:
    """A person's step: the hub's login page in headless Chromium, user name and password typed, JupyterLab
    with the fetched assignment in the file browser."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,768"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        driver.get(f"{base}/hub/login")
        driver.find_element(By.ID, "username_input").send_keys(user)
        driver.find_element(By.ID, "password_input").send_keys("rehearsal")
        driver.find_element(By.ID, "login_submit").click()
        wait_for("JupyterLab with the fetched assignment", lambda: any(
            "vizkit" == e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, ".jp-DirListing-itemText")), 120)  # fmt: skip
        shots.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(shots / "course-student-lab.png"))
    finally:
        driver.quit()


def rehearse(work: Path, shots: Path) -> dict:
    """Every step; returns the gradebook's scores and each step's seconds."""
    from nbgrader.api import Gradebook

    sys.path.insert(0, str(ROOT / "tools"))
    import assignments

    steps, clock = {}, time.monotonic()

    def step(name: str) -> None:
        nonlocal clock
        steps[name] = round(time.monotonic() - clock, 1)
        print(f"{name}: {steps[name]} s", flush=True)
        clock = time.monotonic()

    exchange, course, homes = work / "exchange", work / "course", work / "home"
    exchange.mkdir()
    exchange.chmod(0o1777)
    homes.mkdir()
    assignments.release([ROOT / "notebooks" / NOTEBOOK], course)
    python = user_python(work)
    step("release built, user environment")
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    with users([TEACHER, ALICE, BOB], homes), hub(work, port, token, python, exchange):
        step("users created, hub up")
        nbgrader("release_assignment", "vizkit", course=course, exchange=exchange)
        step("released to the exchange")
        tokens = {}
        for user in (ALICE, BOB):
            call(f"{base}/hub/api/users/{user}", token, "POST")
            call(f"{base}/hub/api/users/{user}/server", token, "POST")
            wait_for(
                f"{user}'s server",
                lambda u=user: call(f"{base}/hub/api/users/{u}", token)["servers"][""]["ready"],
                180,
            )
            tokens[user] = call(f"{base}/hub/api/users/{user}/tokens", token, "POST", {"note": "rehearsal"})[
                "token"
            ]
        step("students' servers started")
        for user in (ALICE, BOB):
            query = urllib.parse.urlencode({"course_id": "vizkit", "assignment_id": "vizkit"})
            call(f"{base}/user/{user}/assignments/fetch?{query}", tokens[user], "POST", {})
        step("fetched through the students' servers")
        log_in_with_chromium(base, ALICE, shots)
        step("Alice logged in with Chromium")
        path = f"{base}/user/{ALICE}/api/contents/vizkit/{NOTEBOOK}"
        model = call(path, tokens[ALICE])
        nb = solved(nbformat.from_dict(model["content"]))
        call(path, tokens[ALICE], "PUT", {"type": "notebook", "format": "json", "content": nb})
        for user in (ALICE, BOB):
            answer = call(f"{base}/user/{user}/assignments/submit?{query}", tokens[user], "POST", {})
            assert answer.get("success"), answer
        step("solved (Alice) and submitted (both)")
        nbgrader("collect", "vizkit", course=course, exchange=exchange)
        nbgrader("autograde", "vizkit", "--force", course=course, exchange=exchange)
        step("collected and autograded with nbgrader")
        nbgrader("generate_feedback", "vizkit", course=course, exchange=exchange)
        nbgrader("release_feedback", "vizkit", course=course, exchange=exchange)
        step("feedback generated and released")
        with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
            scores = {
                u: (gb.find_submission("vizkit", u).score, gb.find_submission("vizkit", u).max_score)
                for u in (ALICE, BOB)
            }
        inbox = sorted(p.name for p in (exchange / "vizkit" / "feedback").glob("*.html"))
    return {"scores": scores, "feedback": inbox, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the rehearsal's folder (logs, course)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("the rehearsal creates local users and starts servers as them: run it as root")
    work = Path(tempfile.mkdtemp(prefix="vizkit-course-"))
    work.chmod(0o755)  # the users' homes are inside
    try:
        result = rehearse(work, ROOT / "build" / "screenshots")
        print(json.dumps(result, indent=2))
        (alice, alice_max), (bob, _) = result["scores"][ALICE], result["scores"][BOB]
        assert alice == alice_max > 0 and bob == 0, result["scores"]
        assert len(result["feedback"]) == 2, result["feedback"]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
