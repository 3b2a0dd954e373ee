"""Pyramid pixel-wise supervision for face anti-spoofing in JAX/Flax.

Label convention everywhere: 1 = bona fide (live), 0 = attack; scores are higher for live.
"""

__version__ = "0.1.0"
