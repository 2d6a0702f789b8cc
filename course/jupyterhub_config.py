"""JupyterHub for the vizkit course on one server (JupyterHub from PyPI, configurable-http-proxy from npm).

    make course-install     # jupyterhub into the project's environment, the proxy into course/node_modules
    sudo .venv/bin/jupyterhub -f course/jupyterhub_config.py --ip 0.0.0.0 --port 8000

Students log in with their account on this machine (PAM); VIZKIT_HUB_AUTH=dummy uses JupyterHub's
built-in DummyAuthenticator instead (any existing user, the password in VIZKIT_HUB_PASSWORD: for the
rehearsal, never for a real course). Each user's server is started as that user (LocalProcessSpawner)
from this vizkit environment, with one torch thread, and reads course/nbgrader_config.py: the course id
and the exchange, a shared folder where the teacher releases and students submit. Teachers are the
users in VIZKIT_HUB_TEACHERS (comma-separated; default "teacher"): hub admins, who use nbgrader's
formgrader in their own JupyterLab. Paths are resolved from this file; the hub's state (database,
cookie secret, proxy pid) lives in course/state/ (git-ignored), or in VIZKIT_HUB_STATE.
"""

import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STATE = Path(os.environ.get("VIZKIT_HUB_STATE", HERE / "state"))
STATE.mkdir(parents=True, exist_ok=True)
BIN = Path(sys.executable).parent  # the environment this hub runs from: vizkit's
TEACHERS = {t for t in os.environ.get("VIZKIT_HUB_TEACHERS", "teacher").split(",") if t}

c = get_config()  # noqa: F821  (JupyterHub defines it)
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
local_proxy = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
c.ConfigurableHTTPProxy.command = [
    str(local_proxy)
    if local_proxy.exists()
    else shutil.which("configurable-http-proxy") or "configurable-http-proxy"
]

if os.environ.get("VIZKIT_HUB_AUTH", "pam") == "dummy":
    if not os.environ.get("VIZKIT_HUB_PASSWORD"):  # without one, anyone could log in as anyone
        raise SystemExit(
            "VIZKIT_HUB_AUTH=dummy needs VIZKIT_HUB_PASSWORD (the one password of the rehearsal)"
        )
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = os.environ["VIZKIT_HUB_PASSWORD"]
c.Authenticator.allow_all = True  # every local account may log in: students need no list here
c.Authenticator.blocked_users = {"root"}  # whose server would run as root
c.Authenticator.admin_users = TEACHERS

# A user's server: this environment's Python (VIZKIT_HUB_PYTHON: another interpreter that sees the same
# packages, where this one is not readable by the users, as when it lives in root's home)
c.Spawner.cmd = [os.environ.get("VIZKIT_HUB_PYTHON", sys.executable), "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.environment = {
    "OMP_NUM_THREADS": "1",  # one torch thread per student kernel: many kernels share the cores
    "VIZKIT_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    # nbgrader_config.py (the course and its exchange), then this environment's server extensions and
    # JupyterLab extensions (nbgrader's Assignments tab) for an interpreter whose own prefix is elsewhere
    "JUPYTER_CONFIG_PATH": os.pathsep.join([str(HERE), f"{sys.prefix}/etc/jupyter"]),
    "JUPYTER_PATH": f"{sys.prefix}/share/jupyter",
    "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
}
c.Spawner.env_keep.extend(["VIZKIT_EXCHANGE", "VIZKIT_FAST", "VIZKIT_OFFLINE"])  # passed on from the hub's
if os.environ.get("VIZKIT_HUB_SERVICE_TOKEN"):  # the rehearsal's admin: creates users, starts their servers
    c.JupyterHub.services = [{"name": "rehearsal", "api_token": os.environ["VIZKIT_HUB_SERVICE_TOKEN"]}]
    c.JupyterHub.load_roles = [{"name": "rehearsal", "services": ["rehearsal"],
                                "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}]  # fmt: skip
c.Spawner.mem_limit = os.environ.get("VIZKIT_HUB_MEM_LIMIT", "4G")  # advertised to the server; enforced by
# a container spawner (see course/README.md for a course that outgrows one machine)
c.Spawner.http_timeout = 120  # the first import of torch on a cold machine takes a while
