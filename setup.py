"""Build hook: the wheel carries the spec library and the JSON Schema.

`specs/` and `schema/` stay at the top of the repository, where specs, editors and CI expect
them, and remain the source of truth; building a wheel copies them into `compiler/data/`,
where `compiler.data_path` finds them once installed. An editable install copies nothing:
`compiler.data_path` reads the checkout's own folders.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLED = ("specs", "schema")  # compiler.BUNDLED; setup.py cannot import the package


class build_py_with_data(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for name in BUNDLED:
            target = Path(self.build_lib, "compiler", "data", name)
            shutil.rmtree(target, ignore_errors=True)  # a file deleted from specs/ must go
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__"))


setup(cmdclass={"build_py": build_py_with_data})
