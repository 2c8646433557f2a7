"""Seeded randomness, split so that sections of the simulation cannot disturb each other.

Two tools:

* `Streams` hands out one `numpy.random.Generator` per (section name, chunk index). Each is
  seeded from `SeedSequence(seed, spawn_key=(crc32(name), *index))` - the same mechanism as
  `SeedSequence.spawn`, but addressed by name, so adding a new section or changing how many
  draws one section makes never shifts the numbers of another. Chunk indices make the output
  independent of how work is scheduled, as long as the chunk size constants stay the same.
* `hash_uniform` is a counter-based generator: a pure function of (seed, salt, keys) that
  gives a uniform number in [0, 1). It lets any part of the code ask "what is the price of
  listing i on day d?" without storing a listings x days matrix or replaying a stream.
"""

from __future__ import annotations

import zlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _name_key(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


class Streams:
    """Independent random generators addressed by section name and chunk index."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def rng(self, name: str, *index: int) -> np.random.Generator:
        seq = np.random.SeedSequence(self.seed, spawn_key=(_name_key(name), *index))
        return np.random.Generator(np.random.PCG64(seq))

    def salt(self, name: str) -> np.uint64:
        """A 64-bit salt for `hash_uniform`, derived from the seed and a name."""
        seq = np.random.SeedSequence(self.seed, spawn_key=(_name_key(name),))
        return np.uint64(seq.generate_state(1, dtype=np.uint64)[0])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    # Reference constants of SplitMix64 (Steele, Lea, Flood 2014); uint64 arithmetic wraps.
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_uniform(salt: np.uint64, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) numbers that depend only on `salt` and the integer `keys` (broadcast)."""
    with np.errstate(over="ignore"):
        h = np.full(np.broadcast(*[np.asarray(k) for k in keys]).shape, salt, dtype=np.uint64)
        for key in keys:
            h = _splitmix64(h ^ (np.asarray(key).astype(np.int64).astype(np.uint64) & _MASK64))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
