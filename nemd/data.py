"""Where nemd finds reference data and weight files that are not shipped in the package."""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def water_data_dir() -> Path | None:
    """Directory with the water reference data (potentials, structures), or None.

    ``$NEMD_DATA`` wins; otherwise ``../shared/data/water`` next to the repository.
    """
    env = os.environ.get("NEMD_DATA")
    if env:
        return Path(env)
    candidate = _REPO_ROOT.parent / "shared" / "data" / "water"
    return candidate if candidate.is_dir() else None
