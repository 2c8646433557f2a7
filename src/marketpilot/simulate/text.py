"""Listing text - title, description, attributes - rendered from the words an item is made of.

The words are the item's generating pieces (leaf noun, brand, style words, colour, size,
condition), so title text is informative about the latent factors: that is what makes
content-based cold start possible on this data. Rendering is done with Arrow string kernels
on whole chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpilot.simulate import vocabulary as vocab
from marketpilot.simulate.categories import Catalogue
from marketpilot.simulate.output import take

CONDITIONS = tuple(vocab.CONDITIONS)
SIZES = vocab.APPAREL_SIZES + vocab.SHOE_SIZES


@dataclass(frozen=True)
class ItemWords:
    """Indices of the words an item is made of (-1 = absent)."""

    leaf: np.ndarray
    noun: np.ndarray  # index into nouns(catalogue)
    brand: np.ndarray
    style1: np.ndarray
    style2: np.ndarray
    colour: np.ndarray
    size: np.ndarray  # index into SIZES
    condition: np.ndarray


def nouns(catalogue: Catalogue) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """All nouns flattened, with each leaf's offset and count into that list."""
    flat: list[str] = []
    offsets, counts = [], []
    for leaf_nouns in catalogue.leaf_nouns:
        offsets.append(len(flat))
        counts.append(len(leaf_nouns))
        flat.extend(leaf_nouns)
    return tuple(flat), np.array(offsets), np.array(counts)


def _join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="")


def _optional(prefix: str, value: pa.Array, suffix: str = "") -> pa.Array:
    """prefix + value + suffix, or '' where value is null."""
    return pc.fill_null(pc.binary_join_element_wise(prefix, value, suffix, ""), "")


def render(catalogue: Catalogue, words: ItemWords) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(title, description, attributes JSON) for a chunk of items."""
    flat_nouns, _, _ = nouns(catalogue)
    noun = take(flat_nouns, words.noun)
    brand = take(catalogue.brands, words.brand)
    style1 = take(vocab.STYLES, words.style1)
    style2 = take(vocab.STYLES, words.style2)
    colour = take(vocab.COLOURS, words.colour)
    size = take(SIZES, words.size)
    condition = take(CONDITIONS, words.condition)

    title = _join(brand, " ", style1, _optional(" ", style2), " ", noun, ", ", colour,
                  _optional(", size ", size))

    condition_text = take([vocab.CONDITIONS[c][3] for c in CONDITIONS], words.condition)
    phrase1 = take([vocab.STYLE_PHRASES[s] for s in vocab.STYLES], words.style1)
    phrase2 = _optional(" ", take([vocab.STYLE_PHRASES[s] for s in vocab.STYLES], words.style2))
    top_phrase = take([vocab.TOP_LEVEL_PHRASES[t] for t in catalogue.tops], catalogue.leaf_top[words.leaf])
    description = _join(pc.utf8_capitalize(style1), " ", noun, " by ", brand, " in ", colour, ". ",
                        condition_text, " ", phrase1, phrase2, " ", top_phrase)

    attributes = _join('{"brand": "', brand, '", "condition": "', condition, '", "colour": "', colour, '"',
                       _optional(', "size": "', size, '"'), "}")
    return title, description, attributes
