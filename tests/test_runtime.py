"""Process settings: huge pages for malloc, per model."""

from nemd.models.lennard_jones import LennardJones
from nemd.models.nemp import NEMPModel
from nemd.runtime import HUGE_PAGES, huge_pages_active, malloc_environment, wanted_huge_pages


def test_malloc_environment_switches_only_the_huge_page_tunable():
    env = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2", "PATH": "/bin"}
    on = malloc_environment(True, env)
    assert huge_pages_active(on) and "glibc.malloc.arena_max=2" in on["GLIBC_TUNABLES"] and on["PATH"] == "/bin"
    off = malloc_environment(False, on)
    assert not huge_pages_active(off) and off["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    assert "GLIBC_TUNABLES" not in malloc_environment(False, {"GLIBC_TUNABLES": HUGE_PAGES})


def test_models_state_their_preference_and_the_user_can_force_it(monkeypatch):
    monkeypatch.delenv("NEMD_HUGE_PAGES", raising=False)
    assert wanted_huge_pages(NEMPModel) and not wanted_huge_pages(LennardJones())
    monkeypatch.setenv("NEMD_HUGE_PAGES", "0")
    assert not wanted_huge_pages(NEMPModel)
    monkeypatch.setenv("NEMD_HUGE_PAGES", "1")
    assert wanted_huge_pages(LennardJones())
