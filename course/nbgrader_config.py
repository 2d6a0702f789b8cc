"""nbgrader for the vizkit course: read by the teacher's and every student's server (JupyterHub sets
JUPYTER_CONFIG_PATH to this folder) and by the teacher's command line in the course directory.

The exchange is a folder every user can write to (mode 1777, as nbgrader's documentation asks); its place
comes from VIZKIT_EXCHANGE (default /srv/nbgrader/exchange). The course directory is the one
`make assignments` builds (build/assignments: source/, release/, gradebook.db), or VIZKIT_COURSE_DIR.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821  (nbgrader defines it)
c.CourseDirectory.course_id = "vizkit"
c.Exchange.root = os.environ.get("VIZKIT_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.root = os.environ.get(
    "VIZKIT_COURSE_DIR", str(Path(__file__).resolve().parent.parent / "build" / "assignments")
)
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ExecutePreprocessor.timeout = 600
