"""The persistent compilation cache: where it goes, how it is turned off, and that a second
process loads what the first compiled instead of compiling it again."""

import os
import subprocess
import sys
import textwrap

from pyramid_fas_jax.training import compile_cache

# Run in fresh processes: the cache is process-wide JAX state, set before the first compilation.
_SCRIPT = textwrap.dedent("""
    import jax, jax.numpy as jnp
    from pyramid_fas_jax.training import compile_cache
    hits = []
    jax.monitoring.register_event_listener(
        lambda event, **kw: hits.append(event) if event.endswith("cache_hits") else None)
    directory = compile_cache.enable()
    # The commands only cache programs that took seconds to compile; this one takes less.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    x = jnp.arange(64.0).reshape(8, 8)
    jax.block_until_ready(jax.jit(lambda x: jnp.tanh(x @ x.T) + 1)(x))
    print(directory, len(hits))
""")


def _run(env):
  p = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True,
                     timeout=300, check=True)
  directory, hits = p.stdout.split()
  return directory, int(hits)


def _env(tmp_path, **extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_COMPILATION_CACHE_DIR", compile_cache.ENV_SWITCH)}
  return {**env, "PYRAMID_FAS_CACHE": str(tmp_path / "cache"), **extra}


def test_second_process_loads_the_compiled_program(tmp_path):
  env = _env(tmp_path)
  directory, hits = _run(env)
  assert directory == str(tmp_path / "cache" / "jax_cache") and hits == 0
  assert any((tmp_path / "cache" / "jax_cache").iterdir())
  again, hits = _run(env)
  assert again == directory and hits > 0


def test_switch_off_and_jax_own_directory(tmp_path):
  assert _run(_env(tmp_path, PYRAMID_FAS_COMPILE_CACHE="0")) == ("None", 0)
  assert not (tmp_path / "cache").exists()
  own = tmp_path / "mine"
  assert _run(_env(tmp_path, JAX_COMPILATION_CACHE_DIR=str(own)))[0] == str(own)


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
  monkeypatch.delenv("PYRAMID_FAS_CACHE", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  assert compile_cache.cache_root() == tmp_path / "pyramid_fas_jax"
  monkeypatch.setenv("PYRAMID_FAS_CACHE", str(tmp_path / "x"))
  assert compile_cache.cache_root() == tmp_path / "x"
