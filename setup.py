"""Build hook: put the viewer's front end (top-level ``widgets/``) inside the wheel.

All project metadata lives in pyproject.toml; this file only adds two command overrides:

* ``build_py`` copies ``widgets/viewer.js``, ``widgets/viewer.css`` and the screen table's
  ``widgets/screen_table.js`` to ``nnp_lab/widgets/static/`` in the build directory, so
  regular wheels (``pip install .``) carry them. Editable installs (``pip install -e .``) need no copy: the package then runs from
  the source tree and ``nnp_lab.widgets.viewer`` finds ``widgets/`` next to it.
* ``sdist`` adds ``widgets/`` to source distributions (the bundle, the stylesheet and the
  JavaScript sources in ``widgets/src/``; never ``node_modules/``), so a wheel built from an
  sdist works too.

``widgets/viewer.js`` is a committed bundle of the ES modules in ``widgets/src/`` (esbuild,
``make viewer``). The bundle is plain JavaScript with no runtime dependencies, so "building" the
front end here is a copy: rebuilding the bundle after editing ``widgets/src/`` needs node and
npm, installing nnp_lab does not.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
FRONTEND_DIR = ROOT / "widgets"
FRONTEND_FILES = ("viewer.js", "viewer.css", "screen_table.js")
FRONTEND_SOURCES = "src"  # the modules viewer.js is bundled from; only sdists carry them


class BuildPyWithFrontend(build_py):
    """``build_py`` that also copies the viewer's front-end files into the package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the source tree is used directly; _frontend.py falls back to ../../widgets
        target = Path(self.build_lib) / "nnp_lab" / "widgets" / "static"
        target.mkdir(parents=True, exist_ok=True)
        for name in FRONTEND_FILES:
            source = FRONTEND_DIR / name
            if not source.is_file():
                raise FileNotFoundError(
                    f"front-end file {source} is missing; the viewer cannot be packaged without it"
                )
            shutil.copy2(source, target / name)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            target = Path(self.build_lib) / "nnp_lab" / "widgets" / "static"
            outputs += [str(target / name) for name in FRONTEND_FILES]
        return outputs


class SdistWithFrontend(sdist):
    """``sdist`` that also ships the front-end sources in ``widgets/``."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        target = Path(base_dir) / "widgets"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(FRONTEND_DIR.glob("*")):
            if path.is_file():
                shutil.copy2(path, target / path.name)
        sources = FRONTEND_DIR / FRONTEND_SOURCES
        if sources.is_dir():
            shutil.copytree(sources, target / FRONTEND_SOURCES, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithFrontend, "sdist": SdistWithFrontend})
