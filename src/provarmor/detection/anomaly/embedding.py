"""FastText word vectors looked up with numpy only, exactly as gensim computes ``wv[word]``.

In-vocabulary words use their stored vector; any other word is the mean of the vectors of its
character n-grams, found by the same FNV-1a hash (over UTF-8 bytes, each byte sign-extended as
in Facebook's fastText) modulo the bucket count. A word with no n-grams is the zero vector.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619
_MASK32 = 0xFFFFFFFF
_CONTINUATION_MASK = 0xC0
_CONTINUATION = 0x80


def ngram_hash(ngram: bytes) -> int:
    """fastText's string hash (32-bit FNV-1a over sign-extended bytes)."""
    value = _FNV_OFFSET
    for byte in ngram:
        value ^= byte | 0xFFFFFF00 if byte >= 0x80 else byte
        value = (value * _FNV_PRIME) & _MASK32
    return value


def ngrams_of(word: str, *, min_n: int, max_n: int) -> Iterator[bytes]:
    """The character n-grams of ``<word>`` in UTF-8, whole characters only, as fastText."""
    data = f"<{word}>".encode()
    size = len(data)
    for start in range(size):
        if data[start] & _CONTINUATION_MASK == _CONTINUATION:
            continue
        end, length = start, 1
        while end < size and length <= max_n:
            end += 1
            while end < size and data[end] & _CONTINUATION_MASK == _CONTINUATION:
                end += 1
            if length >= min_n and not (length == 1 and (start == 0 or end == size)):
                yield data[start:end]
            length += 1


class WordVectors:
    """Word -> vector, for the vocabulary and, through n-grams, for any other word."""

    def __init__(
        self,
        *,
        vocabulary: list[str],
        vectors: FloatArray,
        ngram_vectors: FloatArray,
        min_n: int,
        max_n: int,
    ) -> None:
        self.index = {word: i for i, word in enumerate(vocabulary)}
        self.vectors = vectors
        self.ngram_vectors = ngram_vectors
        self.min_n = min_n
        self.max_n = max_n
        self.dimension = int(vectors.shape[1])

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def vector(self, word: str) -> FloatArray:
        """The vector gensim's ``wv[word]`` gives (float32)."""
        row = self.index.get(word)
        if row is not None:
            vector: FloatArray = self.vectors[row]
            return vector
        buckets = self.ngram_vectors.shape[0]
        if buckets == 0:
            return np.zeros(self.dimension, dtype=np.float32)
        rows = [
            ngram_hash(ngram) % buckets
            for ngram in ngrams_of(word, min_n=self.min_n, max_n=self.max_n)
        ]
        if not rows:
            return np.zeros(self.dimension, dtype=np.float32)
        total = np.zeros(self.dimension, dtype=np.float32)
        for bucket in rows:
            total += self.ngram_vectors[bucket]
        return total / np.float32(len(rows))
