"""The package's layout as the README promises it: every module on the map, commands/ on top
(nothing below imports it), modules small enough to read, every test file on the tests' map."""

import ast
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pyramid_fas_jax"
# The procedural SynthFAS generator is one long recipe; everything else stays readable in one go.
MAX_LINES = 400
LONG_ALLOWED = ("data/synth/",)


def _modules():
  return sorted(p for p in PACKAGE.rglob("*.py") if "static" not in p.parts)


def _section(text: str, heading: str) -> str:
  start = text.index(heading)
  end = text.find("\n## ", start + len(heading))
  return text[start:end if end >= 0 else None]


def _imported_modules(path: pathlib.Path):
  tree = ast.parse(path.read_text(), filename=str(path))
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      yield node.module
      yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_every_module_and_subpackage_is_on_the_readme_map():
  where = _section((REPO / "README.md").read_text(), "## Where things are")
  missing = []
  for path in _modules():
    rel = path.relative_to(PACKAGE)
    if rel.name == "__init__.py":
      # A subpackage is listed as `name/`; the package's own __init__ is the package itself.
      if rel.parent != pathlib.Path(".") and not re.search(rf"\b{rel.parent.name}/", where):
        missing.append(f"{rel.parent}/")
    elif not re.search(rf"(?<![\w.]){re.escape(rel.stem)}\.py\b", where):
      missing.append(str(rel))
  assert not missing, f"README 'Where things are' lacks: {missing}"


def test_nothing_below_the_command_line_imports_commands():
  upward = []
  for path in _modules():
    rel = path.relative_to(PACKAGE)
    if rel.parts[0] in ("commands", "cli.py"):
      continue
    for name in _imported_modules(path):
      if name == "pyramid_fas_jax.commands" or name.startswith("pyramid_fas_jax.commands."):
        upward.append(f"{rel} imports {name}")
      elif name in ("pyramid_fas_jax.cli",):
        upward.append(f"{rel} imports {name}")
  assert not upward, upward


# The package's folders from the ground up, as the README's map reads: each imports only those
# below it, so the floors are the data flow.
FLOORS = ("errors.py", "files", "protocols", "faces", "data", "models", "weights", "training",
          "evaluation", "deploy", "experiment", "commands", "cli.py")
# The imports that run back up, each for a reason; anything else new fails the test below.
UPWARD_ALLOWED = {
    # train_and_evaluate evaluates on dev/test while it trains.
    ("training/train.py", "evaluation"),
}


def _floor_of(rel: pathlib.Path) -> int:
  return FLOORS.index(rel.parts[0])


def _package_path(name: str) -> pathlib.Path | None:
  # A dotted module name -> its file below the package (None for an attribute).
  parts = name.split(".")[1:]
  for candidate in (PACKAGE.joinpath(*parts).with_suffix(".py"),
                    PACKAGE.joinpath(*parts, "__init__.py")):
    if parts and candidate.exists():
      return candidate.relative_to(PACKAGE)
  return None


def test_folders_import_only_the_floors_below():
  upward = []
  for path in _modules():
    rel = path.relative_to(PACKAGE)
    if rel == pathlib.Path("__init__.py"):
      continue
    for name in set(_imported_modules(path)):
      target = _package_path(name) if name.startswith("pyramid_fas_jax.") else None
      if (target is None or target.parts[0] == rel.parts[0]
          or _floor_of(target) < _floor_of(rel)):
        continue
      if (rel.as_posix(), target.parts[0]) not in UPWARD_ALLOWED:
        upward.append(f"{rel} imports {name} ({target.parts[0]} is not below {rel.parts[0]})")
  assert not upward, upward


def test_every_path_the_code_and_readmes_name_exists():
  # A module moved or renamed leaves its old path in a docstring; examples and outside code are
  # the only paths that may not exist here.
  placeholders = ("configs/X.py", "configs/nope.py", "CVPR2020_paper_codes/", "mediapipe/")
  texts = [*_modules(), REPO / "README.md", *(REPO / "tests").glob("*.py"),
           *(REPO / "tests").glob("*.md"), *(REPO / "benchmarks").glob("*.py")]
  stale = set()
  for text_path in texts:
    for m in re.finditer(r"(?<![\w./-])((?:\w+/)+\w+\.py)\b", text_path.read_text()):
      named = m.group(1)
      if named.startswith(placeholders):
        continue
      if not any(base.joinpath(named).exists()
                 for base in (REPO, PACKAGE, REPO / "tests", text_path.parent)):
        stale.add(f"{text_path.relative_to(REPO)} names {named}")
  assert not stale, sorted(stale)


def test_modules_are_short_enough_to_read():
  long = [f"{p.relative_to(PACKAGE)}: {n} lines" for p in _modules()
          if (n := len(p.read_text().splitlines())) > MAX_LINES
          and not str(p.relative_to(PACKAGE)).startswith(LONG_ALLOWED)]
  assert not long, long


def test_every_test_file_is_on_the_tests_map():
  text = (REPO / "tests" / "README.md").read_text()
  missing = [p.name for p in sorted((REPO / "tests").glob("test_*.py")) if p.name not in text]
  assert not missing, f"tests/README.md lacks: {missing}"
  # ... and every module it names exists, so the map cannot rot silently.
  named = set(re.findall(r"`pyramid_fas_jax/([\w/]+\.py)`", text))
  assert named, "tests/README.md names no module"
  gone = sorted(n for n in named if not (PACKAGE / n).is_file())
  assert not gone, f"tests/README.md names modules that do not exist: {gone}"
