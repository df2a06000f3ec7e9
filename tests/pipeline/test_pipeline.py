"""
Tests of the patch-series scripts, run as a user runs them: on a freshly
extracted copy of the pinned sdist and on a scratch copy of this repository.
"""

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
SERIES = SCRIPTS / "series"

from series._series import fetch_sdist, read_pin, read_series  # noqa: E402

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    # No automatic gc: git runs it in the background, where it raced the
    # removal of a test's checkout (FileNotFoundError in its teardown).
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "gc.auto",
    "GIT_CONFIG_VALUE_0": "0",
}


def run(*args, cwd=ROOT, env=None):
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def git(*args, cwd):
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def same_trees(a: Path, b: Path) -> bool:
    """True when both trees hold the same files with the same bytes."""
    comparison = filecmp.dircmp(a, b, ignore=[".git"])
    pending = [comparison]
    while pending:
        current = pending.pop()
        if current.left_only or current.right_only or current.funny_files:
            return False
        _, mismatch, errors = filecmp.cmpfiles(
            current.left, current.right, current.common_files, shallow=False
        )
        if mismatch or errors:
            return False
        pending.extend(current.subdirs.values())
    return True


@pytest.fixture(scope="module")
def scratch():
    """
    A directory for the trees these tests build and copy (hundreds of MB):
    in memory where /dev/shm is, which takes the disk's speed out of them.
    """
    shm = Path("/dev/shm")
    where = shm if shm.is_dir() else None
    path = Path(tempfile.mkdtemp(prefix="multidb-pipeline-", dir=where))
    yield path
    shutil.rmtree(path)


@pytest.fixture
def scratch_dir(scratch, request):
    path = scratch / request.node.name.replace("/", "_")
    path.mkdir()
    yield path
    shutil.rmtree(path)


def copy_tree(source: Path, dest: Path) -> None:
    """Copy a tree of thousands of files (cp is several times faster here)."""
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)


@pytest.fixture(scope="module")
def pristine(scratch):
    path = scratch / "pristine" / "django"
    path.mkdir(parents=True)
    # As extract_sdist() does (vendor.py's tests cover it), with tar: faster.
    sdist = fetch_sdist(read_pin())
    subprocess.run(
        ["tar", "-xzf", str(sdist), "-C", str(path), "--strip-components=1"],
        check=True,
    )
    return path


@pytest.fixture
def checkout(pristine, scratch_dir):
    path = scratch_dir / "django"
    copy_tree(pristine, path)
    return path


def test_check_reports_every_patch(checkout, pristine):
    result = run(SERIES / "apply_patches.py", "--check", checkout)
    assert result.returncode == 0, result.stderr
    for name in read_series():
        assert f"{name}: applies" in result.stdout
    assert same_trees(checkout, pristine)


def test_apply_then_reverse_restores_the_tree(checkout, pristine):
    result = run(SERIES / "apply_patches.py", checkout)
    assert result.returncode == 0, result.stderr
    assert not same_trees(checkout, pristine)
    assert "+multidb." in (checkout / "django" / "utils" / "version.py").read_text()
    result = run(SERIES / "apply_patches.py", "--reverse", checkout)
    assert result.returncode == 0, result.stderr
    assert same_trees(checkout, pristine)


def test_already_applied_series_is_refused(checkout, tmp_path):
    assert run(SERIES / "apply_patches.py", checkout).returncode == 0
    applied = tmp_path / "applied"
    shutil.copytree(checkout, applied, symlinks=True)
    result = run(SERIES / "apply_patches.py", checkout)
    assert result.returncode == 1
    assert "the series is already applied to" in result.stderr
    assert same_trees(checkout, applied)


def test_reverse_without_the_series_is_refused(checkout, pristine):
    result = run(SERIES / "apply_patches.py", "--reverse", checkout)
    assert result.returncode == 1
    assert "the series isn't applied to" in result.stderr
    assert same_trees(checkout, pristine)


def test_other_django_version_is_refused(checkout):
    init = checkout / "django" / "__init__.py"
    init.write_text(init.read_text().replace("VERSION = (5, 2,", "VERSION = (5, 1,"))
    before = init.read_text()
    result = run(SERIES / "apply_patches.py", checkout)
    assert result.returncode == 1
    assert "holds Django 5.1." in result.stderr
    assert "the series is for Django 5.2.x" in result.stderr
    assert init.read_text() == before


def test_not_a_django_tree_is_refused(tmp_path):
    result = run(SERIES / "apply_patches.py", tmp_path)
    assert result.returncode == 1
    assert "is not a Django source tree" in result.stderr


def test_git_checkout_gets_one_commit_per_patch(checkout, pristine):
    git("init", "--quiet", cwd=checkout)
    git("add", "--all", "--force", cwd=checkout)
    git("commit", "--quiet", "-m", "Django", cwd=checkout)
    result = run(SERIES / "apply_patches.py", checkout, env=GIT_ENV)
    assert result.returncode == 0, result.stderr
    log = git("log", "--format=%s", cwd=checkout).splitlines()
    assert len(log) == len(read_series()) + 1
    assert log[-1] == "Django"
    assert git("status", "--porcelain", cwd=checkout) == ""
    result = run(SERIES / "apply_patches.py", "--reverse", checkout, env=GIT_ENV)
    assert result.returncode == 0, result.stderr
    log = git("log", "--format=%s", cwd=checkout).splitlines()
    assert log[0].startswith('Reverted "')
    assert len(log) == 2 * len(read_series()) + 1
    assert same_trees(checkout, pristine)


def test_dirty_git_checkout_is_refused(checkout):
    git("init", "--quiet", cwd=checkout)
    git("add", "--all", "--force", cwd=checkout)
    git("commit", "--quiet", "-m", "Django", cwd=checkout)
    readme = checkout / "README.rst"
    readme.write_text(readme.read_text() + "local change\n")
    result = run(SERIES / "apply_patches.py", checkout, env=GIT_ENV)
    assert result.returncode == 1
    assert "has uncommitted changes" in result.stderr
    assert git("log", "--format=%s", cwd=checkout).splitlines() == ["Django"]


@pytest.fixture(scope="module")
def built_repo(scratch):
    """
    A scratch copy of this repository with the cached sdist, vendored once:
    ./django and build/tree built by scripts/series/vendor.py.
    """
    copy = scratch / "built" / "repo"
    copy.mkdir(parents=True)
    for name in ("scripts", "patches", "tests"):
        shutil.copytree(
            ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    sdist = fetch_sdist(read_pin())
    (copy / "build" / "sdist").mkdir(parents=True)
    shutil.copy(sdist, copy / "build" / "sdist" / sdist.name)
    result = run(copy / "scripts" / "series" / "vendor.py")
    assert result.returncode == 0, result.stderr
    return copy


@pytest.fixture
def repo(built_repo, scratch_dir):
    """A copy of the built repository of its own, for one test."""
    copy = scratch_dir / "repo"
    copy_tree(built_repo, copy)
    return copy


def test_vendor_export_round_trip(repo):
    assert (repo / "django" / "__init__.py").exists()
    result = run(repo / "scripts" / "series" / "vendor.py")
    assert "./django is up to date" in result.stdout
    result = run(repo / "scripts" / "series" / "export_patches.py", "--check")
    assert result.returncode == 0, result.stdout
    result = run(repo / "scripts" / "series" / "export_patches.py")
    assert result.returncode == 0, result.stderr
    assert "0 changed" in result.stdout
    for name in read_series():
        assert (repo / "patches" / name).read_bytes() == (
            ROOT / "patches" / name
        ).read_bytes()


def test_edits_are_exported_into_a_patch(repo, checkout):
    connection = repo / "django" / "utils" / "connection.py"
    connection.write_text(connection.read_text() + "\n# An edit.\n")
    assert (
        run(repo / "scripts" / "series" / "export_patches.py", "--check").returncode
        == 1
    )
    result = run(repo / "scripts" / "series" / "vendor.py")
    assert result.returncode == 1
    assert "./django was edited (utils/connection.py)" in result.stderr
    last = read_series()[-1]
    result = run(repo / "scripts" / "series" / "export_patches.py")
    assert result.returncode == 0, result.stderr
    assert f"Folded the edits into {last}." in result.stdout
    assert "+# An edit." in (repo / "patches" / last).read_text()
    # The exported series, applied to a pristine tree, has the edit.
    result = run(repo / "scripts" / "series" / "apply_patches.py", checkout)
    assert result.returncode == 0, result.stdout + result.stderr
    edited = checkout / "django" / "utils" / "connection.py"
    assert edited.read_text() == connection.read_text()


def test_a_patch_that_does_not_apply_leaves_django_alone(repo):
    before = (repo / "django" / "utils" / "connection.py").read_text()
    broken = repo / "patches" / "connections-broken.patch"
    broken.write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Test <test@example.com>\n"
        "Subject: Broke things.\n\n"
        "diff --git a/django/utils/connection.py b/django/utils/connection.py\n"
        "--- a/django/utils/connection.py\n"
        "+++ b/django/utils/connection.py\n"
        "@@ -1,3 +1,3 @@\n"
        "-this line is not in the file\n"
        "+nor is this one\n"
        " from asgiref.local import Local\n"
        " \n"
    )
    # First in the series: the build stops before applying the others.
    series = repo / "patches" / "series"
    series.write_text("connections-broken.patch\n" + series.read_text())
    result = run(repo / "scripts" / "series" / "vendor.py")
    assert result.returncode == 1
    assert "patch connections-broken.patch does not apply" in result.stderr
    assert "django/utils/connection.py" in result.stderr
    assert (repo / "django" / "utils" / "connection.py").read_text() == before
    assert not (repo / "build" / "tree.new").exists()


@pytest.mark.parametrize(
    "version, message",
    [
        ("6.0", "isn't a Django 5.2.x release"),
        ("5.2.19; rm -rf /", "isn't a Django 5.2.x release"),
        (read_pin().version, "pinned to Django"),
    ],
)
def test_rebase_refuses_and_changes_nothing(built_repo, version, message):
    pin = (built_repo / "patches" / "UPSTREAM").read_text()
    head = git("rev-parse", "HEAD", cwd=built_repo / "build" / "tree")
    result = run(built_repo / "scripts" / "series" / "rebase.py", version)
    assert result.returncode == 1
    assert message in result.stderr
    assert (built_repo / "patches" / "UPSTREAM").read_text() == pin
    assert git("rev-parse", "HEAD", cwd=built_repo / "build" / "tree") == head


def test_pgcluster_removes_its_servers_when_the_command_fails():
    env = {key: value for key, value in os.environ.items() if key != "MULTIDB_PGHOSTS"}
    script = (
        "import os, subprocess, sys\n"
        "hosts = os.environ['MULTIDB_PGHOSTS'].split(os.pathsep)\n"
        "print(*hosts, sep='\\n')\n"
        "for host in hosts:\n"
        "    subprocess.run(['pg_isready', '-q', '-h', host], check=True)\n"
        "sys.exit(3)\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            SCRIPTS / "servers" / "pgcluster.py",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 3, result.stderr
    hosts = [line for line in result.stdout.splitlines() if line.startswith("/")]
    assert len(hosts) == 2
    assert hosts[0] != hosts[1]
    for host in hosts:
        assert not Path(host).exists()
        # No server process is left running on that directory either.
        root = str(Path(host).parent.parent)
        assert subprocess.run(["pgrep", "-f", root]).returncode == 1
    assert "Stopped and removed the throwaway server(s)" in result.stdout


def test_pgcluster_standbys_replay_the_primary():
    env = {key: value for key, value in os.environ.items() if key != "MULTIDB_PGHOSTS"}
    # A write on the primary reaches the standby once it has replayed the
    # primary's WAL position after the write, and not while replay is paused.
    script = (
        "import os, subprocess, time\n"
        "[primary] = os.environ['MULTIDB_PGHOSTS'].split(os.pathsep)\n"
        "[standby] = os.environ['MULTIDB_PG_STANDBYS'].split(os.pathsep)\n"
        "print(standby)\n"
        "def sql(host, statement):\n"
        "    return subprocess.run(\n"
        "        ['psql', '-h', host, '-U', 'postgres', '-Atqc', statement],\n"
        "        capture_output=True, text=True, check=True,\n"
        "    ).stdout.strip()\n"
        "assert sql(standby, 'SELECT pg_is_in_recovery()') == 't'\n"
        "def replayed(lsn):\n"
        "    deadline = time.monotonic() + 10\n"
        "    query = f\"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn\"\n"
        "    while sql(standby, query) != 't':\n"
        "        if time.monotonic() > deadline:\n"
        "            return False\n"
        "        time.sleep(0.01)\n"
        "    return True\n"
        "sql(primary, 'CREATE TABLE t (v int)')\n"
        "sql(primary, 'INSERT INTO t VALUES (1)')\n"
        "assert replayed(sql(primary, 'SELECT pg_current_wal_lsn()'))\n"
        "assert sql(standby, 'SELECT v FROM t') == '1'\n"
        "sql(standby, 'SELECT pg_wal_replay_pause()')\n"
        "sql(primary, 'INSERT INTO t VALUES (2)')\n"
        "lsn = sql(primary, 'SELECT pg_current_wal_lsn()')\n"
        "time.sleep(0.5)\n"
        "assert sql(standby, 'SELECT v FROM t') == '1'\n"
        "sql(standby, 'SELECT pg_wal_replay_resume()')\n"
        "assert replayed(lsn)\n"
        "assert sql(standby, 'SELECT v FROM t ORDER BY v') == '1\\n2'\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            SCRIPTS / "servers" / "pgcluster.py",
            "--servers",
            "1",
            "--standbys",
        ]
        + ["1", "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    [standby] = [line for line in result.stdout.splitlines() if line.startswith("/")]
    assert "standby" in standby
    assert not Path(standby).exists()
    root = str(Path(standby).parent.parent)
    assert subprocess.run(["pgrep", "-f", root]).returncode == 1


def test_pgcluster_says_what_to_install_without_server_binaries(monkeypatch):
    import _common
    from servers import pgcluster

    monkeypatch.delenv("MULTIDB_PG_BINDIR", raising=False)
    monkeypatch.setattr(pgcluster.shutil, "which", lambda name: None)
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: [])
    with pytest.raises(_common.ScriptError, match="apt-get install postgresql"):
        pgcluster.find_bindir()


def test_pgcluster_refuses_a_bindir_without_the_binaries(monkeypatch, tmp_path):
    import _common
    from servers import pgcluster

    monkeypatch.setenv("MULTIDB_PG_BINDIR", str(tmp_path))
    (tmp_path / "initdb").write_text("")
    with pytest.raises(_common.ScriptError, match="MULTIDB_PG_BINDIR is .* no pg_ctl"):
        pgcluster.find_bindir()


@pytest.mark.parametrize(
    "text, found",
    [
        ('VERSION = (5, 2, 19, "final", 0)', True),
        ("VERSION = (5,2,19)", True),
        ("django-5.2.19.tar.gz", True),
        ("5.2.190", False),
        ("15.2.19", False),
        ("(5, 2, 1, 'final', 0)", False),
        ("every 5.2.x", False),
    ],
)
def test_check_patches_finds_the_pinned_version_in_any_form(text, found):
    from series.check_patches import version_pattern

    assert bool(version_pattern("5.2.19").search(text)) is found


def test_mariadbserver_removes_its_server_when_the_command_fails():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIDB_MYSQL")}
    script = (
        "import os, subprocess, sys\n"
        "socket = os.environ['MULTIDB_MYSQL_HOST']\n"
        "print(socket)\n"
        "subprocess.run(['mariadb-admin', '--no-defaults', '--socket=' + socket,\n"
        "                '-uroot', 'ping'], check=True)\n"
        "sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, SCRIPTS / "servers" / "mariadbserver.py", "--", sys.executable]
        + ["-c", script],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    [socket] = [line for line in result.stdout.splitlines() if line.startswith("/")]
    root = Path(socket).parent
    assert not root.exists()
    assert subprocess.run(["pgrep", "-f", str(root)]).returncode == 1
    assert "Stopped and removed the throwaway MariaDB server" in result.stdout


def test_mariadbserver_says_what_to_install_without_server_binaries(
    monkeypatch, tmp_path
):
    import _common
    from servers import mariadbserver

    monkeypatch.delenv("MULTIDB_MARIADB_BINDIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(mariadbserver, "STANDARD_DIRS", [])
    with pytest.raises(_common.ScriptError, match="apt-get install mariadb-server"):
        mariadbserver.find_binaries()
    monkeypatch.setenv("MULTIDB_MARIADB_BINDIR", str(tmp_path))
    with pytest.raises(_common.ScriptError, match="MULTIDB_MARIADB_BINDIR"):
        mariadbserver.find_binaries()


def test_run_upstream_reruns_new_postgres_failures_with_its_settings(
    monkeypatch, tmp_path
):
    """
    A new failure is run again with the same settings module: the directory
    holding the PostgreSQL settings is still there for the rerun.
    """
    from upstream import run_upstream

    (tmp_path / "tests").mkdir()
    monkeypatch.setenv("MULTIDB_PGHOSTS", str(tmp_path))
    monkeypatch.setattr(run_upstream, "prepare_tree", lambda pristine: tmp_path)
    monkeypatch.setattr(run_upstream, "BUILD", tmp_path)
    seen = []

    def runtests(tree, labels, settings, pythonpath, parallel, log):
        module = f"{settings}.py"
        seen.append(any((Path(p) / module).exists() for p in pythonpath))
        return {"tests": 1, "skipped": 0, "seconds": 0, "failures": ["x.T.test"]}

    monkeypatch.setattr(run_upstream, "runtests", runtests)
    monkeypatch.setattr(sys, "argv", ["run_upstream.py", "--db", "postgres", "x"])
    assert run_upstream.main() == 1
    assert seen == [True, True]


def test_an_unreachable_mariadb_server_stops_the_run_in_one_line():
    pytest.importorskip("MySQLdb", reason="runs in the mariadb env (mysqlclient)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIDB_MYSQL")}
    env.update(MULTIDB_MYSQL_HOST="127.0.0.1", MULTIDB_MYSQL_PORT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--ds=settings_mariadb", "-q"]
        + ["tests/two_phase_commit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0
    assert len(output) == 1, output[:5]
    assert "127.0.0.1:1" in output[0]
    assert "MULTIDB_MYSQL_HOST" in output[0]
