"""The layout rules of docs/design.md, checked on the source: imports only go down the
layers, there are no import cycles, and modules stay small."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "nemd"

#: Rank of each top-level part of nemd: a module may import parts of lower rank and its
#: own part only (so models and md, io and analysis, do not import each other).
RANKS = {"__init__": 0, "units": 0, "structure": 0, "files": 0, "data": 0, "benchmarking": 0, "runtime": 0,
         "ase": 4,
         "train": 4,
         "neighbors": 1, "models": 2, "md": 2, "io": 3, "analysis": 3, "protocol": 4, "ui": 4, "cli": 5}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """nemd modules imported anywhere in ``path`` (top level or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nemd")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("nemd"):  # `from base import x`: the submodule x, or base itself
                found |= {f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base for a in node.names}
    return found


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.is_dir() or any(path.parent.glob(path.name + ".*"))  # .py, or a compiled extension


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_part_has_a_rank():
    assert {part(m) for m in MODULES} <= set(RANKS)


def test_imports_go_down_the_layers():
    wrong = []
    for module, path in MODULES.items():
        own = part(module)
        for target in imports(path):
            other = part(target)
            if other != own and other != "__init__" and RANKS[other] >= RANKS[own]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = {m: {t for t in imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    done, stack = set(), []

    def visit(m):
        if m in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
        if m in done:
            return
        stack.append(m)
        for t in graph[m]:
            visit(t)
        stack.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_modules_stay_small():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
