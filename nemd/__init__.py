"""nemd: molecular dynamics with machine-learned potentials on JAX-MD."""

__version__ = "0.1.0"
