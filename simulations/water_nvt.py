"""Liquid water NVT with a machine-learned potential (``nemd water``): `--help` for options.

    python simulations/water_nvt.py --atoms 512
"""

import sys

from nemd.cli.water import main

if __name__ == "__main__":
    sys.exit(main())
