"""
Install the patched Django as the 'Django' distribution, so that packages that
depend on Django accept it, with a PEP 440 local version such as
5.2.19+multidb.1. ./django is built by scripts/vendor.py when it is missing or
out of date.
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def build_vendored_django():
    """
    Run scripts/vendor.py. pip hides what a build prints unless it's run
    with -v: where there's a terminal, vendor.py prints its progress there
    (the first build downloads the sdist and applies the series).
    """
    try:
        terminal = open("/dev/tty", "w")
    except OSError:
        terminal = None
    try:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "vendor.py")],
            check=True,
            stdout=terminal,
            stderr=terminal,
        )
    finally:
        if terminal is not None:
            terminal.close()


def package_layout():
    """Every package under django/ and the data files that go with them."""
    packages, package_data = [], {}
    for dirpath, dirnames, filenames in os.walk(ROOT / "django"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel = Path(dirpath).relative_to(ROOT)
        if "__init__.py" in filenames:
            packages.append(".".join(rel.parts))
    for package in packages:
        package_dir = ROOT.joinpath(*package.split("."))
        data = []
        for dirpath, dirnames, filenames in os.walk(package_dir):
            dirnames[:] = [
                d
                for d in dirnames
                if d != "__pycache__"
                and not (Path(dirpath) / d / "__init__.py").exists()
            ]
            for name in filenames:
                if not name.endswith((".py", ".pyc")):
                    data.append(str((Path(dirpath) / name).relative_to(package_dir)))
        if data:
            package_data[package] = data
    return packages, package_data


def read_version():
    sys.path.insert(0, str(ROOT))
    from django.utils.version import get_version

    return get_version()


build_vendored_django()
packages, package_data = package_layout()
setup(
    name="Django",
    version=read_version(),
    description=(
        "Django with the django-multidb patch series: per-model database "
        "binding, transactions across databases and schema work from managers."
    ),
    license="BSD-3-Clause",
    python_requires=">=3.10",
    install_requires=["asgiref>=3.8.1", "sqlparse>=0.3.1"],
    packages=packages,
    package_data=package_data,
    entry_points={
        "console_scripts": [
            "django-admin = django.core.management:execute_from_command_line"
        ]
    },
    zip_safe=False,
)
