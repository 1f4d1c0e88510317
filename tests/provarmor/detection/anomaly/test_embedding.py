import numpy as np
import pytest

from provarmor.detection.anomaly.embedding import WordVectors, ngram_hash

gensim_models = pytest.importorskip("gensim.models")

SENTENCES = [
    ["/usr/bin/ls", "/etc/passwd", "connect private:443", "/tmp/ñandú/é"],
    ["/usr/bin/cat", "/etc/passwd", "/tmp/<rand>/x", "-c"],
] * 10


@pytest.fixture(scope="module")
def trained():
    model = gensim_models.FastText(
        sentences=SENTENCES, vector_size=12, min_count=1, epochs=2, bucket=3000, seed=1, workers=1
    )
    wv = model.wv
    ours = WordVectors(
        vocabulary=list(wv.index_to_key),
        vectors=np.asarray(wv.vectors, dtype=np.float32),
        ngram_vectors=np.asarray(wv.vectors_ngrams, dtype=np.float32),
        min_n=wv.min_n,
        max_n=wv.max_n,
    )
    return wv, ours


@pytest.mark.parametrize("word", ["/usr/bin/ls", "/tmp/ñandú/é", "connect private:443"])
def test_in_vocabulary_vectors_equal_gensim(trained, word):
    wv, ours = trained
    assert word in ours
    assert np.array_equal(ours.vector(word), wv[word])


@pytest.mark.parametrize(
    "word", ["/etc/shadow", "Ünïcødé→x ☃", "connect public:4444", "ab", "/tmp/.x/sshd"]
)
def test_out_of_vocabulary_vectors_equal_gensim(trained, word):
    wv, ours = trained
    assert word not in ours
    assert np.array_equal(ours.vector(word), wv[word])


def test_ngram_hash_matches_gensim_for_high_bytes():
    from gensim.models.fasttext_inner import ft_hash_bytes

    for ngram in (b"<ab", "ñé>".encode(), b"\xff\x80x"):
        assert ngram_hash(ngram) == ft_hash_bytes(ngram)
