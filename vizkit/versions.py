"""Refuse, in one line, to run beside a package older than vizkit's declared floors (pyproject.toml)."""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import Requirement

__all__ = ["check_versions", "requirement_problem", "UnsupportedVersion"]


class UnsupportedVersion(ImportError):
    """A package vizkit needs is missing or older than the floor vizkit declares."""


def requirement_problem(requirement: str) -> str | None:
    """What is wrong with one declared requirement (e.g. "numpy>=1.24.4") here, or None if it holds."""
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        return None  # an extra's requirement, or one for another platform
    try:
        found = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        return f"vizkit needs {req.name}{req.specifier}, which is not installed: pip install '{req}'"
    if not req.specifier.contains(found, prereleases=True):
        return (
            f"vizkit needs {req.name}{req.specifier}, but {req.name} {found} is installed: "
            f"pip install --upgrade '{req}'"
        )
    return None


def check_versions(distribution: str = "vizkit") -> None:
    """Raise UnsupportedVersion naming the package, its version and the floor, for the first that fails.

    Does nothing when vizkit runs from a source tree without being installed (no metadata)."""
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return
    for line in requirements:
        problem = requirement_problem(line)
        if problem:
            raise UnsupportedVersion(problem)
