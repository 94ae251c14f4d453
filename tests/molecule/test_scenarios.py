"""Every Molecule scenario under molecule/ passes ``molecule test``: create → converge → idempotence
(changed=0 on the second converge) → verify → destroy, on containers of the locally built host image.

One test per scenario directory, so a new scenario is tested without touching this file.  Molecule itself
destroys the platforms at the end, also after a failed step; should it be killed by the timeout, the
``molecule destroy`` here removes what it left.  Needs the local Docker Engine (marker ``docker``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docker import require_engine

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))
HOST_IMAGE_BUILD = ROOT / "scripts" / "build-host-image.sh"
TASK_IMAGE_BUILD = ROOT / "scripts" / "build-task-image.sh"
SCENARIO_TIMEOUT = 1500.0  # seconds for one whole `molecule test`
LOG_TAIL = 12_000  # characters of the log printed for a failed scenario

pytestmark = [pytest.mark.docker, pytest.mark.timeout(SCENARIO_TIMEOUT + 300)]


def _env() -> dict[str, str]:
    """Molecule runs ansible-playbook and ansible-lint by name: the project's venv comes first on PATH."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}", "ANSIBLE_FORCE_COLOR": "0"}


@pytest.fixture(scope="module")
def images() -> None:
    """The host image (systemd, sshd, python3) and the busybox task image; each script is a no-op when its
    image is up to date."""
    require_engine()
    for script in (HOST_IMAGE_BUILD, TASK_IMAGE_BUILD):
        done = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=1500, check=False
        )
        assert done.returncode == 0, f"{script.name} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


def test_scenarios_found() -> None:
    """The discovery above sees the scenarios (a typo in a path would silently test nothing)."""
    assert {"common", "paas_release", "zookeeper", "docker"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule(scenario: str, images: None, tmp_path: Path) -> None:
    log = tmp_path / f"molecule-{scenario}.log"
    cmd = ["molecule", "test", "-s", scenario]
    with log.open("w") as out:
        try:
            rc = subprocess.run(
                cmd, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT, timeout=SCENARIO_TIMEOUT
            ).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    if rc != 0:
        subprocess.run(
            ["molecule", "destroy", "-s", scenario], cwd=ROOT, env=_env(), capture_output=True, timeout=300
        )
    text = log.read_text(errors="replace")
    assert rc == 0, f"molecule test -s {scenario}: exit {rc}\n…{text[-LOG_TAIL:]}"
