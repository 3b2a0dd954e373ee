"""Draws docs/synth_fas_samples.png: every species in every domain, with depth and mask.

  python datasets/synth_fas/make_figure.py [--out=docs/synth_fas_samples.png] [--size=192]

Renders straight from the generator (no build needed), one subject per domain column, the
face box drawn on each crop.
"""

import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pyramid_fas_jax.data.synth import generate

_REPO = pathlib.Path(__file__).resolve().parents[2]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=str(_REPO / "docs" / "synth_fas_samples.png"))
  parser.add_argument("--size", type=int, default=192)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  cfg = generate.SynthConfig(crop_size=args.size, num_subjects=8, frames_per_video=1,
                             seed=args.seed)
  videos = generate.videos(cfg)
  fig, axes = plt.subplots(len(generate.SPECIES), 3 * len(cfg.domains),
                           figsize=(2.0 * 3 * len(cfg.domains), 2.15 * len(generate.SPECIES)))
  for col, domain in enumerate(cfg.domains):
    subject = 2 * col + 1  # a different face in each column
    for row, species in enumerate(generate.SPECIES):
      video = next(v for v in videos if v.subject == subject and v.domain == domain
                   and v.species == species)
      ex = generate.render_example(cfg, video, 0)
      y0, x0, y1, x1 = np.array(ex.face_box) * args.size
      panels = (ex.image, ex.depth, ex.mask)
      for k, (panel, title) in enumerate(zip(panels, ("image", "depth", "mask"))):
        ax = axes[row, 3 * col + k]
        ax.imshow(panel, cmap=None if panel.ndim == 3 else "gray", vmin=0, vmax=255)
        if k == 0:
          ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="lime",
                                     lw=0.8))
          ax.set_ylabel(species, fontsize=11)
        if row == 0:
          ax.set_title(f"{domain}: {title}" if k == 0 else title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
  fig.suptitle("SynthFAS: live and attack species (rows) in four capture domains; depth = 0 "
               "for attacks, mask = 1 (white) on live pixels", fontsize=12)
  fig.tight_layout(rect=(0, 0, 1, 0.97))
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=80)
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
