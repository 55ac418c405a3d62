"""Figures of analysis results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

from .rdf import RDFResult


def plot_rdf(result: RDFResult, path, title: str | None = None) -> None:
    """g(r) of every pair (top) and running coordination numbers (bottom) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True,
                                      gridspec_kw=dict(height_ratios=[2, 1]))
    for pair, g in result.g.items():
        top.plot(result.r, g, lw=1.8, label=pair)
        bottom.plot(result.edges[1:], result.coordination[pair], lw=1.5, label=pair)
    top.axhline(1.0, color="0.6", lw=0.8, ls="--")
    # Covalent (intramolecular) peaks would flatten the rest: scale to the peaks beyond
    # 1.2 Å and label the ones that go off scale.
    beyond = result.r > 1.2
    ceiling = max(3.0, 1.15 * max(float(g[beyond].max()) for g in result.g.values())) if beyond.any() else None
    if ceiling is not None:
        top.set_ylim(-0.1, ceiling)
        notes = [f"{pair}: g = {g.max():.1f} at {result.r[g.argmax()]:.2f} Å (off scale)"
                 for pair, g in result.g.items() if g.max() > ceiling]
        if notes:
            top.text(0.02, 0.97, "\n".join(notes), transform=top.transAxes, va="top", fontsize=9, color="0.3")
    top.set_ylabel("g(r)")
    top.legend(frameon=False)
    top.set_title(title or f"Radial distribution functions ({result.n_frames} frames)")
    bottom.set_xlabel("r (Å)")
    bottom.set_ylabel("coordination n(r)")
    bottom.set_xlim(0, result.edges[-1])
    bottom.set_ylim(0, max(1.0, min(20.0, max(c[-1] for c in result.coordination.values()))))
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=150)
    plt.close(fig)
