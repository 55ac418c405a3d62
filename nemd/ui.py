"""What command-line programs share: progress bars, Ctrl-C handling, messages.

Library code reports through callbacks and the ``nemd`` logger; programs decide what the
user sees with these helpers.
"""

from __future__ import annotations

import logging
import signal
import sys
import time


class UserError(Exception):
    """Bad input: a program reports it as one line, exits with status 2 and writes nothing."""


def show_messages() -> None:
    """Print the ``nemd`` logger's INFO messages (stage reports) on stdout, as plain lines."""
    log = logging.getLogger("nemd")
    if not any(getattr(h, "_nemd_stdout", False) for h in log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._nemd_stdout = True
        log.addHandler(handler)
    log.setLevel(logging.INFO)


class StopOnInterrupt:
    """While active, Ctrl-C asks the run to stop at the end of the running chunk (state,
    trajectory and checkpoint stay consistent); a second Ctrl-C interrupts at once.
    Pass the object as ``stop=``: calling it tells whether a stop was requested."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.requested


class Progress:
    """A tqdm bar over MD steps showing T, potential energy per atom, steps/s and ns/day;
    pass it as ``on_chunk=``. Redraws at most every 0.5 s on a terminal, 10 s in logs."""

    def __init__(self, total: int, n_atoms: int, timestep_fs: float, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="step", desc=label, dynamic_ncols=True, file=sys.stdout,
                        mininterval=0.5 if sys.stdout.isatty() else 10.0)
        self.n_atoms, self.timestep = n_atoms, timestep_fs
        self.t0, self.done = time.perf_counter(), 0
        self.temperatures = []

    def __call__(self, report) -> None:
        self.done += report.n_steps
        self.temperatures.append(report.temperature)
        rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
        # postfix first and without its own refresh, so update() redraws at most every mininterval
        self.bar.set_postfix_str(f"T={report.temperature:6.1f} K  Epot={report.potential / self.n_atoms:.4f} eV/atom  "
                                 f"{rate:.1f} steps/s  {rate * self.timestep * 86400e-6:.3f} ns/day", refresh=False)
        self.bar.update(report.n_steps)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
