"""Helpers every dataset's protocol module uses: the split names and the accepted inputs."""

from collections.abc import Callable, Iterable, Mapping

SPLITS = ("train", "dev", "test")


def video_names(videos: Iterable[str | Mapping]) -> list[str]:
  """Official video names from names or per-example metadata dicts ('video_id'), deduplicated
  in first-seen order (the pipeline passes one dict per frame)."""
  seen = {}
  for v in videos:
    name = v if isinstance(v, str) else v["video_id"]
    seen.setdefault(name, None)
  return list(seen)


def check_split(split: str) -> None:
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def unknown_protocol(dataset: str, protocol: str, known) -> ValueError:
  return ValueError(f"unknown {dataset} protocol {protocol!r}; expected one of {list(known)}")


def bad_name(dataset: str, name: str, expected: str) -> ValueError:
  return ValueError(f"{name!r} is not a {dataset} video name; expected {expected}")


def select(videos: Iterable[str | Mapping], split: str, parse: Callable[[str], dict],
           keep: Callable[[dict], bool]) -> list[str]:
  """Sorted names whose parsed stored split is `split` and that `keep` accepts."""
  check_split(split)
  out = []
  for name in video_names(videos):
    v = parse(name)
    if v["split"] == split and keep(v):
      out.append(name)
  return sorted(out)
