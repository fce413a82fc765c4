"""The cheap DATA frame repr gives hyperframe's own text, so h2's trace lines read the same."""

import hyperframe.frame
from hyperframe.frame import DataFrame
from hypothesis import given
from hypothesis import strategies as st

from gateway.layers.http import h2_frame_repr


def test_installed_when_the_http2_layer_is_imported() -> None:
    import gateway.layers.http.http2  # noqa: F401

    assert hyperframe.frame._raw_data_repr is h2_frame_repr.raw_data_repr
    assert h2_frame_repr.install() is True  # idempotent


@given(st.one_of(st.none(), st.binary(max_size=64), st.binary(min_size=9000, max_size=17000)))
def test_same_text_as_hyperframe(data: bytes | None) -> None:
    assert h2_frame_repr.raw_data_repr(data) == h2_frame_repr.hyperframe_raw_data_repr(data)


def test_data_frame_repr_reads_as_before() -> None:
    h2_frame_repr.install()
    frame = DataFrame(1, data=bytes(range(200)) * 80)
    assert repr(frame) == "DataFrame(stream_id=1, flags=[]): <hex:00010203040506070809...>"
    assert repr(DataFrame(3, data=b"\xab\xcd")) == "DataFrame(stream_id=3, flags=[]): <hex:abcd>"


def test_left_alone_when_hyperframe_differs(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Another hyperframe whose helper writes other text keeps its own helper."""
    def other(data: bytes | None) -> str:
        return "<other>"

    monkeypatch.setattr(h2_frame_repr, "hyperframe_raw_data_repr", other)
    monkeypatch.setattr(hyperframe.frame, "_raw_data_repr", other)
    assert h2_frame_repr.install() is False
    assert hyperframe.frame._raw_data_repr is other
