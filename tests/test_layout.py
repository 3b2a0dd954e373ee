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
