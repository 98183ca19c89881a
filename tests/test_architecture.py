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


def is_type_checking_block(node):
    """`if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`): imports for the type checker only."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(tree):
    """ast.walk without the bodies of `if TYPE_CHECKING:` blocks, which never run."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo.extend(
            child for child in ast.iter_child_nodes(node) if not is_type_checking_block(child)
        )


def imports_of(name, path, known):
    """The known modules a module imports when it runs, anywhere in its body (functions
    included); an import for the type checker only (`if TYPE_CHECKING:`) cannot close an
    import cycle and is left out (the layering rules below still see it)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in runtime_nodes(ast.parse(open(path).read())):
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
BELOW_STUDY += ("estimators",)
NEVER = [
    *((lower, "study", ()) for lower in BELOW_STUDY),
    ("data", "models", ()),
    ("analysis", "reporting", ()),
    ("study", "tuning", ()),
    # tuning/ is handed the study's data, model builder and solver by app/tune.py
    ("tuning", "study", ()),
    ("tuning", "analysis", ()),
    ("tuning", "reporting", ()),
    ("tuning", "serving", ()),
    ("study", "reporting", ()),
    ("study", "serving", ()),
    ("study", "analysis", ("json_safe",)),  # what scoring needs
]


def test_the_estimators_import_nothing_else_of_the_package():
    """kerastransfer/estimators/ sits below config.py, which reads its registry's names and
    help: it imports only its own modules."""
    for module, path in module_files().items():
        if within(module, "kerastransfer.estimators"):
            for name in imported_names(module, path):
                if within(name, "kerastransfer"):
                    assert within(name, "kerastransfer.estimators"), f"{module} imports {name}"


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
REPORTING_SELECTORS = (
    "records.ok_records",
    "records.is_base",
    "tables.pooled_bases",
    "tables.find_cell",
)


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
                if target not in files:  # outside kerastransfer: loaded, not followed
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
        "estimators",
        "study.pruning",
    ],
)
def test_no_tensorflow_below_the_training_layer(module):
    """models/, surgery, analysis/, the config, the results store, reporting/, the estimators
    and --prune's decision are plain Keras, numpy or matplotlib: importing them loads no
    TensorFlow (they run on any Keras backend)."""
    loaded = loads_on_import(f"kerastransfer.{module}", module_files())
    assert not any(name == "tensorflow" or name.startswith("tensorflow.") for name in loaded)


@pytest.mark.parametrize("module", ["config", "estimators", "estimators.registry", "analysis"])
def test_no_scikit_learn_on_import(module):
    """scikit-learn (about 1.4 s to import) loads inside the estimators that use it: the
    config, which reads the estimators' registry, and the analysis load none of it."""
    loaded = loads_on_import(f"kerastransfer.{module}", module_files())
    assert not any(name == "sklearn" or name.startswith("sklearn.") for name in loaded)


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for info in pkgutil.walk_packages(kerastransfer.__path__, "kerastransfer."):
        if info.ispkg:
            doc = importlib.import_module(info.name).__doc__ or ""
            assert "May import" in doc, f"{info.name}/__init__.py docstring"


# What a Treatment is asked for: attributes no other kind of object has.
TREATMENT_ATTRIBUTES = (
    "surgery_mode",
    "probe_first",
    "layer_decay",
    "fine_tuned",
    "per_layer",
    "paper",
    "is_base",
    "frozen",
    "tunes_every_copied_block",
    "copies_other_half",
    "paper_name",
    "plain_fine_tuning",
)
# Names of the table's constants that hold one treatment's name.
TREATMENT_CONSTANTS = ("BASE", "LONG_BASE")
# Expressions that hold a split group, where "random" is the random splits, not a treatment.
SPLIT_GROUP_WORDS = ("group", "kind", "split_group")


def _names_a_treatment(node, names):
    """Whether an expression is a treatment's name: a string literal of the table, a tuple,
    list or set of them, or a constant of the treatments module (treatments.BASE)."""
    if isinstance(node, ast.Constant):
        return node.value in names
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_names_a_treatment(element, names) for element in node.elts)
    if isinstance(node, ast.Attribute):
        return node.attr in TREATMENT_CONSTANTS
    return isinstance(node, ast.Name) and node.id in TREATMENT_CONSTANTS


def _is_split_group(node):
    """Whether an expression reads a split group (split_group(...), x["group"], group)."""
    text = ast.unparse(node)
    return any(word in text for word in SPLIT_GROUP_WORDS)


def _reads_a_treatment(node):
    """Whether an expression reads a record's or a spec's treatment (x["treatment"],
    x.treatment)."""
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "treatment"
    return isinstance(node, ast.Attribute) and node.attr == "treatment"


def _is_constant(node):
    """A literal, or a module constant (an UPPER_CASE name or attribute)."""
    if isinstance(node, ast.Constant):
        return True
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return name.isupper()


def treatment_branches(path, names):
    """(line, code) of each place in a file that compares a treatment's name or a Treatment
    attribute with a value, or builds a dict keyed by treatment names."""
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            by_name = [o for o in operands if _names_a_treatment(o, names)]
            others = [o for o in operands if o not in by_name]
            literal_random = all(
                isinstance(o, ast.Constant) and o.value == "random" for o in by_name
            )
            if by_name and not (literal_random and any(_is_split_group(o) for o in others)):
                found.append((node.lineno, ast.unparse(node)))
            elif any(
                isinstance(o, ast.Attribute) and o.attr in TREATMENT_ATTRIBUTES for o in operands
            ) or (
                all(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops)
                and any(_reads_a_treatment(o) for o in operands)
                and any(_is_constant(o) for o in operands)
            ):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Dict):
            keyed = [
                key for key in node.keys if isinstance(key, ast.Constant) and key.value in names
            ]
            if len(keyed) > 1:  # one such key may be a field (a record's "layer_decay")
                found.append((node.lineno, ast.unparse(node)[:80]))
    return found


def test_only_the_treatments_ask_a_treatments_name():
    """Outside kerastransfer/treatments/, no code compares a treatment's name or a Treatment
    attribute with a value, or keeps a dict keyed by treatment names: the grid, the own-model
    study, the figures and the reports ask the Treatment (treatments.get(name)), so a new
    recipe is one module of that package. At 6c5041b this finds 32 places in 16 files:
    study/study.py 4 (`spec.treatment == "random"`, `treatment.surgery_mode == "probe"`),
    study/own_model.py, study/plan.py and study/scoring.py 1 each, surgery.py 3
    (`mode == "surgical"`), designs.py 2 (the findings' cells keyed by name),
    analysis/tables.py 4, analysis/agreement.py 2 (`trained.surgery_mode == "surgical"`),
    analysis/recommendation.py, findings.py, sizing.py and baselines.py 2 each,
    reporting/plots.py 3 (RECIPE_COLOURS), reporting/estimator_agreement.py 1
    (MEASURED_STYLE), reporting/own_model_report.py 1 (its colours) and tuning/search.py 1
    (summary.json keyed by search)."""
    from kerastransfer import treatments  # noqa: PLC0415

    names = set(treatments.ALL_NAMES)
    found = []
    for module, path in module_files().items():
        if within(module, "kerastransfer") and not within(module, "kerastransfer.treatments"):
            found += [f"{module}:{line}: {code}" for line, code in treatment_branches(path, names)]
    assert not found, "\n".join(found)


def test_tuning_never_imports_study():
    for module, path in module_files().items():
        if within(module, "kerastransfer.tuning"):
            for name in imported_names(module, path):
                assert not within(name, "kerastransfer.study"), f"{module} imports {name}"
