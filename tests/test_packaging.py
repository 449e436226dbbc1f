"""What a `pip install maru` user gets: type hints, and extras that join an existing environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import maru

ROOT = Path(__file__).resolve().parents[1]


def _extras() -> dict[str, list[str]]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


def test_the_package_ships_py_typed() -> None:
    assert (Path(maru.__file__).parent / "py.typed").is_file()


def test_no_extra_pins_an_exact_version() -> None:
    # An exact pin (torch==2.13.0) conflicts with any environment that already has the package;
    # exact versions belong in constraints.txt, which only the project's own setup uses.
    pinned = [req for reqs in _extras().values() for req in reqs if re.search(r"===?", req)]
    assert pinned == []


def test_the_projects_own_setup_pins_the_cpu_torch() -> None:
    pins = (ROOT / "constraints.txt").read_text().splitlines()
    assert "torch==2.13.0" in pins
    assert "-c constraints.txt" in (ROOT / "scripts" / "_install.sh").read_text()


def test_make_setup_leaves_the_bench_extra_to_make_bench() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    default_extras = re.search(r'EXTRAS="\$\{MARU_EXTRAS:-([^}]*)\}"', setup)
    assert default_extras is not None
    assert "bench" not in default_extras.group(1).split(",")
    assert 'install_extras "$VENV/.maru-bench" bench' in (ROOT / "scripts" / "bench.sh").read_text()
