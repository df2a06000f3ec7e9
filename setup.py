"""
Install the patched Django as the 'Django' distribution, so that packages that
depend on Django accept it, with a PEP 440 local version such as
5.2.19+multidb.1. The package is built from patches/ and the pinned sdist by
scripts/series/vendor.py in a temporary directory, which is removed afterwards: the
source tree stays as it was (./django, if there is one, isn't used).
"""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def build_vendored_django():
    """
    Run scripts/series/vendor.py on a copy of scripts/ and patches/ in a temporary
    directory and return that directory, which holds the patched django/.
    What vendor.py prints goes to stderr, which pip shows with -v.
    """
    work = Path(tempfile.mkdtemp(prefix="django-multidb-build-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    for name in ["scripts", "patches"]:
        shutil.copytree(
            ROOT / name, work / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    cached = ROOT / "build" / "sdist"
    if cached.is_dir():
        # The sdist vendor.py downloaded before (it checks the sha256 again).
        shutil.copytree(cached, work / "build" / "sdist")
    print(f"Building the patched Django in {work}.", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, str(work / "scripts" / "series" / "vendor.py")],
        check=True,
        stdout=sys.stderr,
    )
    return work


def package_layout(base):
    """Every package under base/django/ and the data files that go with them."""
    packages, package_data = [], {}
    for dirpath, dirnames, filenames in os.walk(base / "django"):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel = Path(dirpath).relative_to(base)
        if "__init__.py" in filenames:
            packages.append(".".join(rel.parts))
    for package in packages:
        package_dir = base.joinpath(*package.split("."))
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
    """
    The version of the patched package, without building it: the pinned
    release (patches/UPSTREAM) and the series' MULTIDB_RELEASE label (set by
    release-local-version.patch in django/utils/version.py).
    """
    pin = (ROOT / "patches" / "UPSTREAM").read_text()
    version = re.search(r"^version = (\S+)$", pin, re.MULTILINE)[1]
    patch = (ROOT / "patches" / "release-local-version.patch").read_text()
    release = re.search(r"^\+MULTIDB_RELEASE = (\d+)$", patch, re.MULTILINE)[1]
    return f"{version}+multidb.{release}"


# pip asks for the metadata (egg_info, dist_info) before it builds the wheel,
# each time in a new process: only the build needs the package.
if {"egg_info", "dist_info"} & set(sys.argv[1:]):
    work, packages, package_data = Path(tempfile.mkdtemp()), [], {}
    atexit.register(shutil.rmtree, work, ignore_errors=True)
else:
    work = build_vendored_django()
    packages, package_data = package_layout(work)
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
    package_dir={"": str(work)},
    package_data=package_data,
    entry_points={
        "console_scripts": [
            "django-admin = django.core.management:execute_from_command_line"
        ]
    },
    zip_safe=False,
    # Nothing of the build in the source tree.
    options={
        "build": {"build_base": str(work / "setuptools")},
        "egg_info": {"egg_base": str(work)},
    },
)
