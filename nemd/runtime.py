"""Process-level settings that must be chosen before the process starts (ground floor).

Huge pages for ``malloc``: XLA's CPU runtime allocates its temporary buffer with malloc on
every call and faults every 4 KiB page in again; glibc's ``GLIBC_TUNABLES=
glibc.malloc.hugetlb=1`` backs large allocations with transparent huge pages. Measured on
2 cores (docs/benchmarks.md): the message-passing models and their NequIP peers run 1.3-2x
faster with it, the BPNN 20-40 % slower, so it is a per-model choice
(``Potential.prefers_huge_pages``). glibc reads the setting at start-up only, so a program
re-executes itself to change it (``restart_with_huge_pages``).
"""

from __future__ import annotations

import os
import sys

HUGE_PAGES = "glibc.malloc.hugetlb=1"
#: Set by the user to force the choice: "1" (huge pages) or "0" (glibc's default).
OVERRIDE = "NEMD_HUGE_PAGES"
_RESTARTED = "NEMD_MALLOC_RESTARTED"


def huge_pages_active(env=None) -> bool:
    """Whether ``env`` (default: this process's) asks glibc for huge pages."""
    return HUGE_PAGES in (os.environ if env is None else env).get("GLIBC_TUNABLES", "").split(":")


def malloc_environment(huge_pages: bool, env=None) -> dict:
    """A copy of ``env`` (default ``os.environ``) with huge pages for malloc on or off."""
    env = dict(os.environ if env is None else env)
    tunables = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t and t != HUGE_PAGES]
    tunables += [HUGE_PAGES] if huge_pages else []
    if tunables:
        env["GLIBC_TUNABLES"] = ":".join(tunables)
    else:
        env.pop("GLIBC_TUNABLES", None)
    return env


def wanted_huge_pages(model) -> bool:
    """The model's preference, unless ``NEMD_HUGE_PAGES`` says otherwise."""
    forced = os.environ.get(OVERRIDE)
    return forced == "1" if forced in ("0", "1") else bool(getattr(model, "prefers_huge_pages", False))


def restart_with_huge_pages(model) -> None:
    """Re-execute this program (same arguments) with malloc's huge pages set as ``model``
    wants, unless they already are or it restarted once already. Returns only when no
    restart is needed. Call it before any output or file is written."""
    want = wanted_huge_pages(model)
    if want == huge_pages_active() or os.environ.get(_RESTARTED) == "1":
        return
    env = malloc_environment(want)
    env[_RESTARTED] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
