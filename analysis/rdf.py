"""Partial radial distribution functions of an H5MD trajectory (``nemd rdf``): --help.

    python analysis/rdf.py traj.h5 --pairs O-O O-H H-H --rmax 6 --bins 300 --out rdf.csv --plot rdf.png
"""

import sys

from nemd.cli.rdf import main

if __name__ == "__main__":
    sys.exit(main())
