"""Flow files end to end: every flow type round-trips, 10,000 flows round-trip, and
truncated, corrupted, foreign and wrong-version files are handled as documented."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import http, tcp
from gateway.io import FilteredFlowWriter, FlowReader, FlowReadException, FlowWriter, read_flows_from_paths
from gateway.io.framing import HEADER_SIZE, MAGIC
from gateway.test import tflow
from gateway.version import FLOW_FORMAT_VERSION


def write(flows) -> bytes:
    buf = io.BytesIO()
    w = FlowWriter(buf)
    for f in flows:
        w.add(f)
    return buf.getvalue()


def read(data: bytes) -> list:
    return list(FlowReader(io.BytesIO(data)).stream())


def test_every_flow_type_round_trips_with_identical_state(flows_of_every_type):
    flows = flows_of_every_type()
    back = read(write(flows))
    assert [type(f) for f in back] == [type(f) for f in flows]
    for a, b in zip(flows, back, strict=True):
        assert b.get_state() == a.get_state()


def test_round_trip_keeps_the_attributes_users_read(flows_of_every_type):
    flows = flows_of_every_type()
    back = read(write(flows))
    ws = back[4]
    assert ws.websocket.messages[1].text == "hello text ✓"
    assert ws.websocket.close_code == 1000
    gz = back[5]
    assert gz.response.content.startswith(b"<html><body>compressed")
    assert gz.response.raw_content != gz.response.content  # still stored gzip-compressed
    assert gz.request.pretty_url == flows[5].request.pretty_url
    deco = back[6]
    assert deco.marked == ":star:" and deco.comment == "look at this"
    assert deco.metadata["nested"] == {"x": (1, 2)} and deco.metadata[7] is None
    assert deco.modified()
    deco.revert()
    assert deco.request.path == "/path?q=1"
    assert back[6].error.msg == "error"
    assert isinstance(back[7], tcp.TCPFlow) and back[7].messages[3].content == b"\x00\xff binary"
    assert back[11].response.answers[0].data == b"\x08\x08\x08\x08"
    assert all(not f.live for f in back)


def test_ten_thousand_flows_round_trip_identical():
    rnd = random.Random(3)
    flows = []
    for i in range(10_000):
        f = tflow.tflow(resp=True)
        f.request.path = f"/items/{i}?page={rnd.randrange(100)}"
        for _ in range(rnd.randrange(8)):
            f.request.headers.add(f"X-Extra-{rnd.randrange(1000)}", "v" * rnd.randrange(40))
        f.response.content = rnd.randbytes(rnd.randrange(600))
        if i % 97 == 0:
            f.error = tflow.terr(f"error {i}")
        if i % 13 == 0:
            f.marked = "!"
        flows.append(f)
    data = write(flows)
    back = read(data)
    assert len(back) == 10_000
    assert [f.get_state() for f in back] == [f.get_state() for f in flows]


def test_empty_file_and_header_only_file_hold_no_flows():
    assert read(b"") == []
    assert read(write([])) == []
    assert write([]) == MAGIC + struct.pack("<I", FLOW_FORMAT_VERSION)


def test_truncated_file_yields_complete_flows_then_names_the_offset():
    flows = [tflow.tflow(resp=True), tflow.ttcpflow(), tflow.tdnsflow(resp=True)]
    data = write(flows)
    sizes = [len(write(flows[:n])) for n in range(4)]  # record boundaries
    for cut in range(HEADER_SIZE + 1, len(data)):
        complete = max(n for n in range(4) if sizes[n] <= cut)
        reader = FlowReader(io.BytesIO(data[:cut]))
        got = []
        if cut in sizes:
            got = list(reader.stream())
        else:
            with pytest.raises(FlowReadException) as e:
                for f in reader.stream():
                    got.append(f)
            assert e.value.offset == sizes[complete]
            assert f"at byte {sizes[complete]}" in str(e.value)
            assert f"{complete} flows read before it" in str(e.value)
        assert [f.id for f in got] == [f.id for f in flows[:complete]]


def test_truncated_header_is_reported():
    data = write([tflow.tflow()])
    for cut in range(1, HEADER_SIZE):
        with pytest.raises(FlowReadException, match="ends inside its header") as e:
            read(data[:cut])
        assert e.value.offset == 0


def test_every_single_byte_corruption_is_detected_at_its_record():
    flows = [tflow.tflow(resp=True), tflow.tudpflow(), tflow.tflow(err=True)]
    data = write(flows)
    sizes = [len(write(flows[:n])) for n in range(4)]
    rnd = random.Random(5)
    for pos in range(HEADER_SIZE, len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 1 << rnd.randrange(8)
        record = max(n for n in range(3) if sizes[n] <= pos)
        got = []
        with pytest.raises(FlowReadException) as e:
            for f in FlowReader(io.BytesIO(bytes(damaged))).stream():
                got.append(f)
        assert e.value.offset == sizes[record], pos
        assert [f.id for f in got] == [f.id for f in flows[:record]]


def test_record_with_valid_checksum_but_no_flow_inside_is_refused():
    from gateway.io.writer import encode_record

    header = write([])
    for bad in ({"type": "http"}, {"type": "nosuchtype", "id": "x"}, [1, 2, 3], "just a string"):
        data = header + encode_record(tflow.tflow().get_state()) + encode_record(bad)
        got = []
        with pytest.raises(FlowReadException, match="at byte") as e:
            for f in FlowReader(io.BytesIO(data)).stream():
                got.append(f)
        assert len(got) == 1
        assert e.value.offset == len(header + encode_record(tflow.tflow().get_state()))


def test_forged_length_is_corruption_not_an_allocation():
    header = write([])
    forged = header + struct.pack("<II", 0xFFFFFFFF, 0) + b"x" * 20
    with pytest.raises(FlowReadException, match=f"damaged at byte {HEADER_SIZE}: the record header claims"):
        read(forged)


@pytest.mark.parametrize(
    "content, why",
    [
        (json.dumps({"log": {"version": "1.2", "entries": []}}).encode(), "JSON"),
        (b"1234:5:hello,;" * 3, "mitmproxy"),
        (b"\xd4\xc3\xb2\xa1" + b"\x00" * 40, "pcap"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a gateway flow file"),
        (bytes(range(256)), "not a gateway flow file"),
    ],
)
def test_foreign_files_are_refused_with_a_clear_error(content, why):
    with pytest.raises(FlowReadException, match="refusing to read") as e:
        read(content)
    assert why in str(e.value)
    assert e.value.offset == 0


@pytest.mark.parametrize("version", [0, FLOW_FORMAT_VERSION + 1, 2**32 - 1])
def test_other_format_versions_are_refused(version):
    data = write([tflow.tflow()])
    other = MAGIC + struct.pack("<I", version) + data[HEADER_SIZE:]
    with pytest.raises(FlowReadException, match=f"format version {version} .*reads version {FLOW_FORMAT_VERSION}"):
        read(other)


def test_appending_to_an_existing_file_adds_records_without_a_second_header(tmp_path):
    path = tmp_path / "flows.gwf"
    with open(path, "wb") as f:
        FlowWriter(f).add(tflow.tflow(resp=True))
    with open(path, "ab") as f:
        w = FlowWriter(f)
        w.add(tflow.ttcpflow())
        w.add(tflow.tdnsflow())
    flows = read_flows_from_paths([path])
    assert [f.type for f in flows] == ["http", "tcp", "dns"]
    assert path.read_bytes().count(MAGIC) == 1


def test_read_flows_from_paths_names_the_bad_file(tmp_path):
    good = tmp_path / "good"
    good.write_bytes(write([tflow.tflow()]))
    bad = tmp_path / "bad"
    bad.write_bytes(b"nonsense")
    assert len(read_flows_from_paths([good, good])) == 2
    with pytest.raises(FlowReadException, match=f"^{bad}: refusing to read"):
        read_flows_from_paths([good, bad])
    with pytest.raises(FlowReadException, match="No such file"):
        read_flows_from_paths([tmp_path / "missing"])


def test_filtered_writer_writes_only_matching_flows():
    from gateway import flowfilter

    buf = io.BytesIO()
    w = FilteredFlowWriter(buf, flowfilter.parse("~tcp | ~c 404"))
    w.add(tflow.tflow(resp=True))
    w.add(tflow.ttcpflow())
    w.add(tflow.tflow(resp=tflow.tresp(status_code=404)))
    assert [f.type for f in read(buf.getvalue())] == ["tcp", "http"]


def test_stream_states_gives_plain_dicts_without_building_flows():
    flows = [tflow.tflow(resp=True), tflow.ttcpflow()]
    states = list(FlowReader(io.BytesIO(write(flows))).stream_states())
    assert states == [f.get_state() for f in flows]


def test_reader_accepts_a_stream_that_returns_short_reads():
    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self.data = data
            self.pos = 0

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), 3, len(self.data) - self.pos)
            b[:n] = self.data[self.pos : self.pos + n]
            self.pos += n
            return n

    flows = [tflow.tflow(resp=True), tflow.ttcpflow()]
    back = list(FlowReader(Trickle(write(flows))).stream())
    assert [f.get_state() for f in back] == [f.get_state() for f in flows]


def test_records_are_checksummed_over_length_and_payload():
    data = write([tflow.tflow()])
    length, crc = struct.unpack_from("<II", data, HEADER_SIZE)
    payload = data[HEADER_SIZE + 8 :]
    assert len(payload) == length
    assert crc == zlib.crc32(payload, zlib.crc32(struct.pack("<I", length)))


def test_unsaveable_metadata_fails_at_write_time_not_read_time():
    f = tflow.tflow()
    f.metadata["obj"] = object()
    with pytest.raises(TypeError):
        write([f])


def test_http_flow_is_rebuilt_as_an_http_flow():
    back = read(write([tflow.tflow(resp=True)]))[0]
    assert isinstance(back, http.HTTPFlow)
    assert back.request.headers.get_all("Accept") == ["text/html", "application/json"]


def test_a_text_mode_file_object_is_a_clear_error(tmp_path):
    path = tmp_path / "f.gwf"
    path.write_bytes(write([tflow.tflow()]).replace(b"\x89", b"A"))
    with open(path, encoding="latin-1") as f, pytest.raises(FlowReadException, match="open them with mode 'rb'"):
        list(FlowReader(f).stream())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_yields_an_intact_prefix_then_an_error(flows_of_every_type, data):
    flows = flows_of_every_type()
    original = write(flows)
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(0, 3), label="flips")):
        pos = data.draw(st.integers(0, len(damaged) - 1), label="pos")
        damaged[pos] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.integers(0, len(damaged)), label="cut")
    damaged = bytes(damaged[:cut])
    got = []
    try:
        for f in FlowReader(io.BytesIO(damaged)).stream():
            got.append(f)
    except FlowReadException as e:
        assert e.offset is not None and 0 <= e.offset <= len(damaged)
    assert len(got) <= len(flows)
    for a, b in zip(flows, got, strict=False):
        assert b.get_state() == a.get_state()
