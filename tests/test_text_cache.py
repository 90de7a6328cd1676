"""Text embeddings on disk: a text encoded once is read back bitwise, without loading the model."""

from __future__ import annotations

import warnings

import pytest
import torch

from weightinit.generator import text as text_module
from weightinit.generator.text import ConceptTextTruncated, TextEncoder


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTINIT_CACHE", str(tmp_path))
    monkeypatch.delenv("WEIGHTINIT_TEXT_CACHE", raising=False)
    return tmp_path / "text"


def _loads(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = TextEncoder._load

    def counted(self):
        if self._model is None:
            calls.append(1)
        real(self)

    monkeypatch.setattr(TextEncoder, "_load", counted)
    return calls


def test_a_second_process_reads_the_embedding_without_loading_the_model(cache_dir, monkeypatch):
    first = TextEncoder().encode("photo to sepia", conditioning="directional")
    assert len(list(cache_dir.glob("*.safetensors"))) == 3  # the text, its source and its target

    loads = _loads(monkeypatch)
    again = TextEncoder()  # a new encoder has an empty memory cache, as a new process has
    second = again.encode("photo to sepia", conditioning="directional")
    assert loads == []
    assert again.dim == 384 and loads == []  # the width comes from config.json
    for a, b in ((first.tokens, second.tokens), (first.mask, second.mask), (first.pooled, second.pooled)):
        assert torch.equal(a, b)

    again.encode("a text not seen before")
    assert loads == [1]


def test_a_torn_file_is_a_miss_and_is_written_anew(cache_dir):
    expected = TextEncoder().encode("photo to sepia").tokens
    (path,) = cache_dir.glob("*.safetensors")
    path.write_bytes(b"not a safetensors file")
    assert torch.equal(TextEncoder().encode("photo to sepia").tokens, expected)
    assert path.stat().st_size > 100


def test_truncation_is_still_warned_from_the_cache(cache_dir, monkeypatch):
    long_text = " ".join(["very"] * 40) + " sepia"
    with pytest.warns(ConceptTextTruncated):
        TextEncoder().encode(long_text)
    loads = _loads(monkeypatch)
    with pytest.warns(ConceptTextTruncated, match="44 tokens") as caught:
        TextEncoder().encode(long_text)
    assert loads == []  # read from disk, and still warned
    assert caught[0].filename == __file__  # pointing at the caller


def test_max_length_and_forget_and_the_switch(cache_dir, monkeypatch):
    TextEncoder(max_length=16).encode("photo to sepia")
    TextEncoder().encode("photo to sepia")
    assert len(list(cache_dir.glob("*.safetensors"))) == 2  # one per max_length

    enc = TextEncoder()
    enc.forget("photo to sepia")
    assert len(list(cache_dir.glob("*.safetensors"))) == 1

    monkeypatch.setenv("WEIGHTINIT_TEXT_CACHE", "0")
    TextEncoder().encode("photo to noticeable sepia")
    assert len(list(cache_dir.glob("*.safetensors"))) == 1


def test_bulk_encodings_stay_in_memory(cache_dir):
    texts = [f"photo to sepia {i}" for i in range(text_module.DISK_CACHE_MAX_TEXTS + 1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TextEncoder().encode(texts)
    assert not cache_dir.exists() or not list(cache_dir.glob("*.safetensors"))


def test_an_unwritable_cache_does_not_fail_the_encoding(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("WEIGHTINIT_CACHE", str(blocker))  # its "text" folder cannot be made
    assert TextEncoder().encode("photo to sepia").tokens.shape[0] == 1
