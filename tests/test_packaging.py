"""The package installs: pyproject's ranges admit requirements.txt's pins, and `pip install .`
gives importable code and console entry points without claiming the module name `export`."""

import ast
import os
import shutil
import subprocess
import sys

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENTRY_POINTS = ("train", "evaluate", "compare", "bench", "export")


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _pins():
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        lines = [line.split("#")[0].strip() for line in f]
    return {canonicalize_name(Requirement(line).name): Requirement(line) for line in lines if line}


def test_every_dependency_is_pinned_and_the_pin_is_admitted():
    pins = _pins()
    for text in _pyproject()["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name in ("numpy", "scipy"):  # pinned through tensorflow and scikit-learn
            continue
        assert name in pins, f"{requirement.name} is declared in pyproject.toml but not pinned"
        (pin,) = pins[name].specifier
        assert requirement.specifier.contains(pin.version), f"{pin} is outside {requirement}"


def test_entry_points_name_existing_functions():
    # Read, not imported: each command line defines its absl flags on import.
    scripts = _pyproject()["scripts"]
    assert sorted(scripts) == sorted(f"keras-dpnp-{name}" for name in ENTRY_POINTS)
    for target in scripts.values():
        module, function = target.split(":")
        with open(os.path.join(ROOT, *module.split(".")) + ".py", encoding="utf-8") as f:
            tree = ast.parse(f.read())
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert function in functions, target


@pytest.mark.slow
def test_pip_install_into_a_fresh_venv_gives_console_scripts(tmp_path):
    venv = tmp_path / "venv"
    # System site-packages provide the pinned dependencies, so nothing is downloaded.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python, bin_dir = str(venv / "bin" / "python"), venv / "bin"
    # A clean copy: a build/ folder left in the checkout would put stale modules in the wheel.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git", "runs", "exports", "build", "*.egg-info", "__pycache__"
        ),
    )
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-build-isolation", str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    found = subprocess.run(
        [
            python,
            "-c",
            "import keras_dpnp, importlib.util; print(keras_dpnp.__file__); "
            "print(importlib.util.find_spec('export'))",
        ],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    location, export_spec = found.stdout.split()[-2:]
    assert location.startswith(str(venv)) and export_spec == "None"
    helped = subprocess.run(
        [str(bin_dir / "keras-dpnp-train"), "--helpfull"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in helped.stderr, helped.stderr[-2000:]
    assert "--dataset" in helped.stdout and "--epsilon" in helped.stdout
