"""Measuring benchmark cases: each in its own process, with its memory watched.

Each case gets its own process so that its peak memory and compiled code are its own; the
parent polls the child's resident memory and kills it once it passes ``max_gb``, so a
peer that needs more memory than the machine has is reported ("over N GB") instead of
taking the machine down.
"""

from __future__ import annotations

import dataclasses
import resource
import subprocess
import tempfile
import time


def peak_rss_mb() -> float:
    """Largest resident set of this process so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_gb(pid: int) -> float:
    """Current resident set of process ``pid`` (GB; 0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


@dataclasses.dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    peak_gb: float  # largest resident set seen by polling (GB)
    over_limit: bool

    def failure(self) -> str | None:
        """One line saying why the case produced no result, or None."""
        if self.over_limit:
            return f"stopped: resident memory passed {self.peak_gb:.1f} GB"
        if self.returncode != 0:
            return "failed: " + ((self.stderr.strip().splitlines() or [f"exit {self.returncode}"])[-1])
        return None


def run_isolated(cmd: list[str], max_gb: float, poll_s: float = 0.1, env: dict | None = None) -> Outcome:
    """Run ``cmd`` (with environment ``env``); kill it when its resident memory exceeds ``max_gb`` GB."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        peak, over = 0.0, False
        while proc.poll() is None:
            peak = max(peak, rss_gb(proc.pid))
            if peak > max_gb:
                over = True
                proc.kill()
                proc.wait()
                break
            time.sleep(poll_s)
        out.seek(0)
        err.seek(0)
        return Outcome(proc.returncode, out.read(), err.read(), peak, over)
