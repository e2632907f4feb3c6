"""The store's wheel leaves out ``multi_agent/agent.py``, the repository's ADK entry that loads
the team (everything else is configured in ``pyproject.toml``)."""

from setuptools import setup
from setuptools.command.build_py import build_py

TEAM_ONLY = {("multi_agent", "agent")}


class StoreBuildPy(build_py):
    def find_package_modules(self, package, package_dir):  # noqa: ANN001, ANN201
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if (m[0], m[1]) not in TEAM_ONLY]


setup(cmdclass={"build_py": StoreBuildPy})
