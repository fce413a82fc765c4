import gzip
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from gateway import encoding

DATA = "grüße, 世界 ".encode() * 50


@pytest.mark.parametrize("name", ["gzip", "x-gzip", "deflate", "br", "zstd", "identity", "none"])
def test_round_trip(name):
    encoded = encoding.encode(DATA, name)
    assert encoding.decode(encoded, name) == DATA
    if name not in ("identity", "none"):
        assert len(encoded) < len(DATA)


def test_output_decodes_with_independent_implementations():
    assert gzip.decompress(encoding.encode(DATA, "gzip")) == DATA
    assert zlib.decompress(encoding.encode(DATA, "deflate")) == DATA
    assert brotli.decompress(encoding.encode(DATA, "br")) == DATA
    assert zstandard.ZstdDecompressor().decompress(encoding.encode(DATA, "zstd")) == DATA


def test_gzip_encoding_is_deterministic():
    assert encoding.encode(DATA, "gzip") == encoding.encode(DATA, "gzip")


def test_raw_deflate_without_zlib_header_is_accepted():
    raw = zlib.compressobj(wbits=-15)
    data = raw.compress(DATA) + raw.flush()
    assert encoding.decode(data, "deflate") == DATA


def test_zstd_streamed_frames_without_content_size_and_multiple_frames():
    cctx = zstandard.ZstdCompressor(write_content_size=False)
    chunked = cctx.compress(b"part one ") + cctx.compress(b"part two")
    assert encoding.decode(chunked, "zstd") == b"part one part two"


def test_gzip_with_multiple_members():
    assert encoding.decode(gzip.compress(b"a") + gzip.compress(b"b"), "gzip") == b"ab"


def test_stacked_codings_are_undone_in_reverse_order():
    stacked = brotli.compress(gzip.compress(DATA))  # gzip applied first, then br
    assert encoding.decode(stacked, "gzip, br") == DATA
    assert encoding.encode(DATA, "gzip, br") == brotli.compress(gzip.compress(DATA, mtime=0))


@pytest.mark.parametrize("name", ["gzip", "deflate", "br", "zstd"])
def test_empty_body_decodes_to_empty(name):
    assert encoding.decode(b"", name) == b""


@pytest.mark.parametrize("name", ["gzip", "deflate", "br", "zstd"])
def test_garbage_raises_valueerror(name):
    with pytest.raises(ValueError):
        encoding.decode(b"this is not compressed at all", name)


def test_truncated_gzip_raises_valueerror():
    with pytest.raises(ValueError):
        encoding.decode(gzip.compress(DATA)[:-10], "gzip")


def test_text_codecs():
    assert encoding.decode("é".encode("latin-1"), "latin-1") == "é"
    assert encoding.encode("é", "utf-8") == b"\xc3\xa9"
    with pytest.raises(ValueError):
        encoding.decode(b"\xff", "utf-8")
    with pytest.raises(ValueError):
        encoding.encode("✓", "latin-1")
    assert encoding.decode(b"\xff", "utf-8", "replace") == "\ufffd"


def test_unknown_and_bytes_to_bytes_codecs_are_refused():
    with pytest.raises(ValueError):
        encoding.decode(b"x", "no-such-codec")
    for name in ("base64", "zlib_codec", "rot13", "hex"):
        with pytest.raises(ValueError):
            encoding.decode(b"aGk=", name)
    with pytest.raises(ValueError):
        encoding.encode(b"x", "no-such-codec")


def test_none_passes_through():
    assert encoding.decode(None, "gzip") is None
    assert encoding.encode(None, "gzip") is None


def test_type_errors():
    with pytest.raises(TypeError):
        encoding.decode("text", "gzip")
    with pytest.raises(TypeError):
        encoding.encode("text", "gzip")


@given(st.binary(max_size=2000), st.sampled_from(["gzip", "deflate", "br", "zstd"]))
def test_round_trip_any_bytes(data, name):
    assert encoding.decode(encoding.encode(data, name), name) == data
