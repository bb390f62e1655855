#!/usr/bin/env python3
"""Print the package's structure checks: import cycles, the longest files, the longest functions.

    .venv/bin/python scripts/structure_report.py [--top N]

(a) Import cycles among ``resnet_edge`` modules (there should be none), from the real import graph,
    function-level imports included; then the function-level imports that are not of an optional heavy
    dependency (docs/architecture.md: only those may hide inside a function).
(b) The longest Python and C++ source files, marking any over 400 lines.
(c) The longest functions (Python through ``ast``, C++ through a brace scan), marking any over 80 lines.

Exit status 1 when there is a cycle, or a file over 400 lines or a function over 80 lines under
``resnet_edge/`` or ``csrc/``; ``tests/``, ``benchmarks/`` and ``scripts/`` are listed but not held to
the limits. .ci/run runs it after ``lint-imports``.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# grimp is the graph builder import-linter itself uses (installed with it, pinned in requirements.txt):
# the cycles reported here come from the same graph `lint-imports` checks. It parses every import
# statement, function bodies included, and resolves relative imports and `from package import module`
# the way Python does, which a hand-written ast walk would have to re-implement.
import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "resnet_edge"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
ENFORCED = ("resnet_edge", "csrc")  # held to the limits
LISTED = ("tests", "benchmarks", "scripts")  # shown, not held to them
PY_SUFFIXES = {".py"}
CPP_SUFFIXES = {".cpp", ".cc", ".cu", ".h", ".hpp", ".cuh"}
# The only imports allowed inside a function: optional, heavy, or absent on some hosts.
HEAVY_DEPS = {
    "torch_tensorrt", "tensorrt", "modelopt", "onnxruntime", "onnx", "onnxscript",
    "matplotlib", "cuda", "pycuda", "openvino", "nncf",
}


@dataclass(frozen=True)
class Measured:
    """A file or a function and its length in lines."""

    where: str  # path, or path:line name
    lines: int
    enforced: bool


# ---------------------------------------------------------------------------------------------- files

def source_files() -> list[tuple[Path, bool]]:
    """Every Python and C++ source under the checked folders, with whether the limits apply to it."""
    found = []
    for top in ENFORCED + LISTED:
        base = ROOT / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix in PY_SUFFIXES | CPP_SUFFIXES and "__pycache__" not in path.parts:
                found.append((path, top in ENFORCED))
    return found


def count_lines(path: Path) -> int:
    """Physical lines, as ``wc -l`` counts them (plus a last line without a newline)."""
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines())


# ---------------------------------------------------------------------------------- Python functions

def python_functions(path: Path) -> list[tuple[int, str, int]]:
    """(first line, qualified name, lines) of every def in a Python file; a def's lines include nested defs."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str, int]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                out.append((child.lineno, name, child.end_lineno - child.lineno + 1))
                walk(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, prefix + child.name + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return out


# ------------------------------------------------------------------------------------- C++ functions
# A brace scan rather than a C++ parser: libclang would need each file's real compile flags (torch,
# CUDA, TensorRT, OpenCV include paths) to parse it, and measuring function length only needs where a
# function body opens and closes. The code base's style (no braces in macros or initialiser lists
# spanning a function header) keeps this exact enough; comments and literals are blanked first.

_CPP_LEXEME = re.compile(
    r'//[^\n]*|/\*.*?\*/|R"(?P<delim>[^(\s]*)\(.*?\)(?P=delim)"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'',
    re.S,
)
_CONTAINER = re.compile(r"^(template\s*<.*>\s*)?(namespace|class|struct|union|enum|extern)\b", re.S)
_CONTROL = re.compile(r"^(if|for|while|switch|catch|do|else|return|try)\b")


def _blank(match: re.Match) -> str:
    # Keep newlines so line numbers survive; blank the rest so braces in comments and strings don't count.
    return re.sub(r"[^\n]", " ", match.group(0))


def cpp_functions(path: Path) -> list[tuple[int, str, int]]:
    """(first line, name, lines) of every function body in a C++/CUDA file (member functions included)."""
    text = _CPP_LEXEME.sub(_blank, path.read_text(encoding="utf-8", errors="replace"))
    text = re.sub(r"^[ \t]*#.*$", lambda m: " " * len(m.group(0)), text, flags=re.M)  # preprocessor
    out: list[tuple[int, str, int]] = []
    scopes: list[bool] = []  # per open brace outside functions: True for a namespace/class body
    header_start = 0
    function: tuple[int, str] | None = None  # (offset where its header starts, name) while inside one
    depth = 0
    for i, ch in enumerate(text):
        if ch not in "{};":
            continue
        if function is not None:  # inside a function body: only match its braces
            depth += {"{": 1, "}": -1, ";": 0}[ch]
            if depth == 0:
                first = text.count("\n", 0, function[0]) + 1
                out.append((first, function[1], text.count("\n", 0, i) + 2 - first))
                function, header_start = None, i + 1
            continue
        if ch == "{":
            raw = text[header_start:i]
            header = raw.strip()
            if (not scopes or scopes[-1]) and _is_function_header(header):
                function, depth = (header_start + len(raw) - len(raw.lstrip()), _function_name(header)), 1
            else:
                scopes.append(bool(_CONTAINER.match(header)))
        elif ch == "}" and scopes:
            scopes.pop()
        header_start = i + 1
    return out


def _is_function_header(header: str) -> bool:
    """`T f(...) const {`, `C::C(...) : m_(x) {`, `TORCH_LIBRARY(ns, m) {`; not `x = {`, `class C {`, `if (...) {`."""
    if "(" not in header or _CONTAINER.match(header) or _CONTROL.match(header):
        return False
    flat = header.replace("operator==", "operator").replace("operator=", "operator")
    while re.search(r"\([^()]*\)", flat):  # drop (...) groups, innermost first, to see top-level `=`
        flat = re.sub(r"\([^()]*\)", "", flat)
    return "=" not in flat.replace("==", "").replace("<=", "").replace(">=", "")


def _function_name(header: str) -> str:
    before = header.split("(", 1)[0].split()
    return before[-1] if before else "?"


# ------------------------------------------------------------------------------------ import graph

def import_graph() -> grimp.ImportGraph:
    """resnet_edge's module graph; no cache, so a CI run never reads a stale one."""
    sys.path.insert(0, str(ROOT))
    return grimp.build_graph(PACKAGE, cache_dir=None)


def runtime_edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """importer -> imported, plus the packages an import enters (`import a.b.c` also runs a/b/__init__.py)."""
    edges: dict[str, set[str]] = {m: set() for m in graph.modules}
    for importer in graph.modules:
        importer_parents = _ancestors(importer) | {importer}
        for imported in graph.find_modules_directly_imported_by(importer):
            edges[importer].add(imported)
            edges[importer].update(p for p in _ancestors(imported) if p not in importer_parents)
    return edges


def _ancestors(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges[node]:
                        components.append(component)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return [_shortest_cycle(sorted(c)[0], c, edges) for c in components]


def _shortest_cycle(start: str, component: set[str], edges: dict[str, set[str]]) -> list[str]:
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start] + path[::-1][1:] + [start] if node != start else [start, start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    return [start]


def describe_edge(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    """`a -> b (l.12)`, or `(enters package b)` where the edge is an import of one of b's modules."""
    details = graph.get_import_details(importer=importer, imported=imported)
    where = ", ".join(f"l.{d['line_number']}" for d in details) or "enters the package"
    return f"{importer} -> {imported} ({where})"


# ---------------------------------------------------------------------------- function-level imports

def function_level_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, enclosing function, imported top-level name) of each import inside a function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str, str]] = []

    def walk(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(child, child.name)
                continue
            if function is not None and isinstance(child, ast.Import):
                out.extend((child.lineno, function, alias.name) for alias in child.names)
            elif function is not None and isinstance(child, ast.ImportFrom):
                name = "." * child.level + (child.module or "")
                out.append((child.lineno, function, name))
            walk(child, function)

    walk(tree, None)
    return out


def is_heavy(name: str) -> bool:
    return not name.startswith(".") and name.split(".")[0] in HEAVY_DEPS


# ----------------------------------------------------------------------------------------- report

def report_cycles() -> bool:
    """Print the import cycles and the non-heavy function-level imports; True when there is a cycle."""
    print("== (a) import cycles among resnet_edge modules (function-level imports included)")
    graph = import_graph()
    edges = runtime_edges(graph)
    cycles = find_cycles(edges)
    print(f"   {len(graph.modules)} modules, {sum(map(len, edges.values()))} import edges")
    for cycle in cycles:
        print("   CYCLE:")
        for importer, imported in zip(cycle, cycle[1:]):
            print("     " + describe_edge(graph, importer, imported))
    print(f"   {len(cycles)} cycle(s)")

    found, light = 0, []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        for line, function, name in function_level_imports(path):
            found += 1
            if not is_heavy(name):
                light.append(f"{path.relative_to(ROOT)}:{line} in {function}(): {name}")
    print(f"\n== function-level imports in {PACKAGE}/: {found}, {len(light)} not of an optional heavy dependency")
    for entry in light:
        print("   " + entry)
    return bool(cycles)


def print_ranked(title: str, items: list[Measured], limit: int, top: int) -> bool:
    """The `top` longest items of each group, then every other over-limit one; True if an enforced one is over."""
    print(f"\n== {title} (limit {limit} lines in {'/, '.join(ENFORCED)}/; * = over)")
    over_enforced = False
    for enforced in (True, False):
        group = sorted((m for m in items if m.enforced == enforced), key=lambda m: -m.lines)
        label = "held to the limit" if enforced else f"listed only ({', '.join(LISTED)})"
        print(f"   -- {label}: {len(group)}, {sum(m.lines > limit for m in group)} over")
        shown = [m for i, m in enumerate(group) if i < top or m.lines > limit]
        for m in shown:
            print(f"   {'*' if m.lines > limit else ' '} {m.lines:5d}  {m.where}")
        over_enforced |= enforced and any(m.lines > limit for m in group)
    return over_enforced


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top", type=int, default=15, help="how many of the longest to list per group")
    args = parser.parse_args()

    failed = report_cycles()
    files, functions = [], []
    for path, enforced in source_files():
        rel = str(path.relative_to(ROOT))
        files.append(Measured(rel, count_lines(path), enforced))
        scan = python_functions if path.suffix in PY_SUFFIXES else cpp_functions
        functions += [Measured(f"{rel}:{line} {name}", n, enforced) for line, name, n in scan(path)]
    failed |= print_ranked("(b) longest source files", files, MAX_FILE_LINES, args.top)
    failed |= print_ranked("(c) longest functions", functions, MAX_FUNCTION_LINES, args.top)
    print("\nstructure: " + ("FAILED (see the cycles and * lines above)" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
