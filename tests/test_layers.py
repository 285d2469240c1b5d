"""The import contracts (``pyproject.toml``, run by ``make lint``): the layers name
every module and fail when a lower layer imports a higher one, even from inside a
function; no two sibling modules import each other in a cycle.

The failing cases run ``lint-imports`` on a copy of the apps with one upward import
added, so the real tree is never touched.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("knowlix", "feed", "mailservers", "routing", "dnscheck")
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]
    (layers,) = [c for c in config["contracts"] if c["id"] == "layers"]
    return layers


def layer_modules() -> list[set[str]]:
    """Each layer's modules, highest layer first."""
    return [{m.strip() for m in layer.split(":")} for layer in contract()["layers"]]


def app_modules() -> set[str]:
    """Every module of the five apps, by dotted name (packages included)."""
    names = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names.add(".".join(parts))
    return names


def named_by(module: str, listed: set[str]) -> bool:
    """A layer names a module by itself or by one of its parent packages."""
    parts = module.split(".")
    return any(".".join(parts[:i]) in listed for i in range(1, len(parts) + 1))


def test_every_app_module_belongs_to_one_layer():
    """A new module must be put in a layer; none is in two."""
    layers = layer_modules()
    listed = set().union(*layers)
    # Packages that only hold modules of several layers (and the apps themselves).
    containers = {
        m for m in app_modules() if any(n.startswith(m + ".") for n in listed)
    }
    missing = sorted(m for m in app_modules() - containers if not named_by(m, listed))
    assert missing == [], f"add these modules to a layer in pyproject.toml: {missing}"
    for module in app_modules() - containers:
        owners = [i for i, layer in enumerate(layers) if named_by(module, layer)]
        assert len(owners) == 1, f"{module} is in layers {owners}"


def test_layers_are_the_documented_seven_lowest_first():
    """Core at the bottom, then DNS/DKIM, queue, feed, routing, pollers, the top."""
    lowest_first = [
        "knowlix.models",
        "dnscheck.signing",
        "mailservers.services.outgoing",
        "feed.services",
        "routing.services",
        "mailservers.services.incoming",
        "mailservers.tasks",
    ]
    layers = list(reversed(layer_modules()))
    assert len(layers) == len(lowest_first)
    for layer, module in zip(layers, lowest_first, strict=True):
        assert module in layer


def copy_apps(tmp_path: Path) -> Path:
    """The apps and pyproject.toml, copied without caches."""
    for app in APPS:
        shutil.copytree(
            ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--config", "pyproject.toml"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contract_holds_on_the_unchanged_copy(tmp_path):
    """The control case: the copied tree passes, so a failure below is the edit's."""
    result = lint_imports(copy_apps(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("path", "added", "broken"),
    [
        # The core reaches up to the feed.
        ("knowlix/params.py", "import feed.models\n", "knowlix.params -> feed.models"),
        # DKIM signing reaches up to the queue, from inside a function.
        (
            "dnscheck/signing.py",
            "def _late() -> None:\n"
            "    from mailservers.services.outgoing import queue_mail  # noqa\n",
            "dnscheck.signing -> mailservers.services.outgoing",
        ),
        # The queue reads the feed's messages again.
        (
            "mailservers/services/outgoing.py",
            "from feed.models import Message  # noqa\n",
            "mailservers.services.outgoing -> feed.models",
        ),
        # The checker sends its own notices.
        (
            "dnscheck/services.py",
            "from dnscheck.notify import notify_admins_of_break  # noqa\n",
            "dnscheck.services -> dnscheck.notify",
        ),
        # Routing calls the pollers back.
        (
            "routing/services.py",
            "from mailservers.services import incoming  # noqa\n",
            "routing.services -> mailservers.services.incoming",
        ),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, path, added, broken):
    """``make lint`` fails, naming the offending import, when a lower layer imports
    a higher one (module level or inside a function)."""
    tree = copy_apps(tmp_path)
    with (tree / path).open("a") as source:
        source.write("\n\n" + added)
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Knowlix layers: nothing imports upward BROKEN" in result.stdout
    assert broken in result.stdout


def test_a_cycle_within_a_layer_breaks_the_acyclic_contract(tmp_path):
    """Two modules of one layer that import each other fail ``make lint`` too."""
    tree = copy_apps(tmp_path)
    with (tree / "dnscheck/checks.py").open("a") as source:
        source.write("\n\nfrom dnscheck import services  # noqa\n")
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Knowlix layers: nothing imports upward KEPT" in result.stdout
    assert "no import cycles between sibling modules BROKEN" in result.stdout
    assert "No cycles are allowed in dnscheck" in result.stdout


def function_level_imports() -> list[str]:
    """``path:line module`` of each import of an app module made inside a function."""
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom):
                        names = [node.module or ""]
                    elif isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    else:
                        continue
                    for name in names:
                        if name.split(".")[0] in APPS:
                            rel = path.relative_to(ROOT)
                            found.append(f"{rel}:{node.lineno} {name}")
    return found


def test_no_app_module_is_imported_inside_a_function():
    """Imports between app modules sit at module level, where the contract and a
    reader see them; only an app config may import once the models are loaded."""
    allowed = {"feed/apps.py"}  # AppConfig: imported before any model can be
    offending = [
        entry
        for entry in function_level_imports()
        if entry.split(":")[0] not in allowed
    ]
    assert offending == []
