import subprocess
import sys

from nemd import __version__
from nemd.cli import main


def test_version_and_info(capsys):
    out = subprocess.run([sys.executable, "-m", "nemd.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"nemd {__version__}"
    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "neighbour backends: numba" in text and "JAX backend" in text and "jax-md" in text
