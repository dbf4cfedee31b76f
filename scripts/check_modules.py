#!/usr/bin/env python3
"""Lists the import cycles between files of src/ (one file = one module) and exits 1 if any.

A file uses another when it names it by a `crate::a::b` path (in `use` or inline, outside its
`#[cfg(test)] mod tests`) or by `super::x`. Parent and child modules may name each other's items
only through such paths, so a `mod` declaration alone is not a use. The check is textual and
conservative: comments that name a `crate::` path count as uses too.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "src")
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

files = {}
for path in ROOT.rglob("*.rs"):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    files[tuple(parts)] = path


def owner(segments):
    """The file module that holds the item at `segments` (the longest matching prefix)."""
    for n in range(len(segments), 0, -1):
        if tuple(segments[:n]) in files:
            return tuple(segments[:n])
    return None


def uses(module, text):
    text = re.sub(r"(?s)#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text)
    found = set()
    for match in re.finditer(r"crate::((?:[a-z_][a-z0-9_]*::)*(?:[a-z_][a-z0-9_]*|\{[^;]*?\}))", text):
        head, _, braces = match.group(1).partition("{")
        prefix = [s for s in head.split("::") if s]
        tails = re.split(r",(?![^{]*\})", braces.rstrip("}")) if braces else [""]
        for tail in tails:
            rest = [s for s in tail.split("{")[0].strip().split("::") if IDENT.match(s)]
            found.add(owner(prefix + rest))
    for match in re.finditer(r"\bsuper::((?:[a-z_][a-z0-9_]*::)*)", text):
        found.add(owner(list(module[:-1]) + [s for s in match.group(1).split("::") if s]))
    # A module's own items and its ancestors' (which declare it) are not edges.
    return {t for t in found if t and t != module and module[: len(t)] != t}


graph = {m: uses(m, p.read_text()) for m, p in files.items()}

# Tarjan's strongly connected components.
index, low, stack, on_stack, cycles = {}, {}, [], set(), []
sys.setrecursionlimit(10_000)


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on_stack:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on_stack.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            cycles.append(sorted(component))


for module in graph:
    if module not in index:
        visit(module)
for cycle in cycles:
    print("import cycle:", " ".join("/".join(m) for m in cycle))
print(f"{len(cycles)} import cycles between {len(files)} files of {ROOT}")
sys.exit(1 if cycles else 0)
