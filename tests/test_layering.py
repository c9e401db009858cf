"""The import layering (.importlinter) is part of the suite: a broken contract fails `./test` and CI.

`lint-imports` runs as a separate process (it analyses the source, imports nothing of the app)
from the virtualenv that runs the tests; with --no-cache it reads the tree as it is now.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd):
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})  # one report line per contract


def test_the_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path):
    """The contracts catch what they are for: a copy of the package with a lower layer importing a
    higher one and a cycle in chat fails, naming both."""
    shutil.copytree(ROOT / "rentpe", tmp_path / "rentpe", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    with open(tmp_path / "rentpe/realtime/registry.py", "a") as module:
        module.write("\n\ndef _feature():\n    from ..chat import models  # noqa: F401\n")
    with open(tmp_path / "rentpe/chat/models.py", "a") as module:
        module.write("\n\ndef _renderer():\n    from . import events  # noqa: F401\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "rentpe.realtime.registry -> rentpe.chat.models" in result.stdout
    assert "No import cycles inside chat (boards sit above chat's conversation core) BROKEN" in result.stdout
    assert "Contracts: 1 kept, 2 broken." in result.stdout
