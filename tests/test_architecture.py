"""The package's shape: no import cycles, the layering rules of docs/architecture.md, and
every package's docstring says what lives there and what it may import."""

import ast
import importlib
import os
import pkgutil

import pytest

import kerastransfer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "kerastransfer")
TOOLS = os.path.join(REPO, "tools")


def module_files():
    """{module name: path} of every module of kerastransfer/ and tools/ (both packages, their
    subpackages included)."""
    found = {}
    for top in (PACKAGE, TOOLS):
        for root, _, names in os.walk(top):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(root, name)
                    parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    found[".".join(parts)] = path
    return found


def imports_of(name, path, known):
    """The known modules a module imports anywhere in its body (functions included)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            submodules = {f"{module}.{alias.name}" for alias in node.names} & set(known)
            # `from package import submodule` needs the submodule; any other name comes
            # from the package's __init__.
            targets.update(submodules)
            if len(submodules) < len(node.names):
                targets.add(module)
    return {t for t in targets if t in known and t != name}


@pytest.fixture(scope="module")
def graph():
    known = module_files()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_no_import_cycles(graph):
    """Depth-first search for a back edge; names the cycle it finds."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)


def reaches(graph, start):
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def in_package(module, package):
    return module == f"kerastransfer.{package}" or module.startswith(f"kerastransfer.{package}.")


def imported_names(name, path):
    """The dotted names a module imports anywhere in its body: `from a.b import c` gives
    "a.b.c", `import a.b` gives "a.b" (relative imports resolved)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


# docs/architecture.md's "never" rules: (importer, what it never imports, what of that it may
# import all the same). "study" means kerastransfer.study and its modules, and so on.
BELOW_STUDY = ("data", "models", "surgery", "flops", "training", "workdir", "config")
BELOW_STUDY += ("treatments", "designs", "errors", "registry", "analysis", "reporting", "serving")
NEVER = [
    *((lower, "study", ()) for lower in BELOW_STUDY),
    ("data", "models", ()),
    ("analysis", "reporting", ()),
    ("study", "tuning", ()),
    ("study", "reporting", ()),
    ("study", "serving", ()),
    ("study", "analysis", ("estimators", "json_safe")),  # what scoring needs
]


@pytest.mark.parametrize(("importer", "imported", "allowed"), NEVER)
def test_layers_never_import_what_the_table_forbids(importer, imported, allowed):
    forbidden = f"kerastransfer.{imported}"
    allowed = [f"{forbidden}.{name}" for name in allowed]
    for module, path in module_files().items():
        if within(module, f"kerastransfer.{importer}"):
            for name in imported_names(module, path):
                if within(name, forbidden):
                    assert any(within(name, a) for a in allowed), f"{module} imports {name}"


def test_the_registry_imports_nothing_of_the_package_but_errors():
    """config.py reads registry.py's entries to check --dataset and --arch before TensorFlow
    loads; the modules that implement the entries import the registry, never the reverse."""
    path = module_files()["kerastransfer.registry"]
    taken = imported_names("kerastransfer.registry", path)
    assert {name for name in taken if within(name, "kerastransfer")} <= {
        "kerastransfer.errors.UsageError"
    }


# What reporting/ takes from analysis/: its constants (UPPER_CASE names) and the selectors of
# the records a figure draws as dots. Every number reporting shows is the analysis dict's, so
# no function that computes one (cell_table, relative_drop, sizing's, power's), and not the
# package whole.
REPORTING_SELECTORS = ("records.ok_records", "tables.pooled_bases", "tables.find_cell")


def test_reporting_takes_only_constants_and_record_selectors_from_analysis():
    for module, path in module_files().items():
        if within(module, "kerastransfer.reporting"):
            for name in imported_names(module, path):
                if within(name, "kerastransfer.analysis"):
                    taken = name.removeprefix("kerastransfer.analysis.")
                    constant = taken != name and taken.rpartition(".")[2].isupper()
                    assert constant or taken in REPORTING_SELECTORS, f"{module} imports {name}"


def test_only_run_and_the_drivers_import_the_drivers():
    for module, path in module_files().items():
        if module != "kerastransfer.run" and not within(module, "kerastransfer.app"):
            for name in imported_names(module, path):
                assert not within(name, "kerastransfer.app"), f"{module} imports {name}"


def test_only_the_drivers_combine_study_tuning_reporting_and_serving():
    """A module outside app/ imports at most one of these packages besides its own."""
    combined = ("study", "tuning", "reporting", "serving")
    for module, path in module_files().items():
        if within(module, "kerastransfer.app"):
            continue
        names = imported_names(module, path)
        others = {
            package
            for package in combined
            if not within(module, f"kerastransfer.{package}")
            and any(within(name, f"kerastransfer.{package}") for name in names)
        }
        assert len(others) <= 1, f"{module} imports {sorted(others)}"


def top_level_imports(path):
    """Module names a file imports when it is imported (not inside functions)."""
    names = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def loads_on_import(module, files, seen=None):
    """Every module that importing `module` loads, following kerastransfer's own modules
    (their packages' __init__ included)."""
    seen = set() if seen is None else seen
    parts = module.split(".")
    for end in range(1, len(parts) + 1):
        name = ".".join(parts[:end])
        if name in files and name not in seen:
            seen.add(name)
            for target in top_level_imports(files[name]):
                seen.add(target)
                loads_on_import(target, files, seen)
    return seen


@pytest.mark.parametrize(
    "module",
    [
        "models",
        "surgery",
        "flops",
        "analysis",
        "config",
        "registry",
        "treatments",
        "designs",
        "workdir.results",
        "reporting",
    ],
)
def test_no_tensorflow_below_the_training_layer(module):
    """models/, surgery, analysis/, the config, the results store and reporting/ are plain
    Keras, numpy or matplotlib: importing them loads no TensorFlow (they run on any Keras
    backend)."""
    loaded = loads_on_import(f"kerastransfer.{module}", module_files())
    assert not any(name == "tensorflow" or name.startswith("tensorflow.") for name in loaded)


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for info in pkgutil.walk_packages(kerastransfer.__path__, "kerastransfer."):
        if info.ispkg:
            doc = importlib.import_module(info.name).__doc__ or ""
            assert "May import" in doc, f"{info.name}/__init__.py docstring"
