from gateway import exceptions
from gateway.addonmanager import AddonHalt
from gateway.io import FlowReader
from gateway.optmanager import OptionsError


def test_mitmproxy_style_imports_reach_the_raising_code():
    assert exceptions.AddonHalt is AddonHalt
    assert exceptions.OptionsError is OptionsError


def test_flow_read_exception_is_what_a_bad_file_raises(tmp_path):
    p = tmp_path / "bad.flows"
    p.write_bytes(b"not a flow file at all")
    try:
        with p.open("rb") as f:
            list(FlowReader(f).stream())
    except exceptions.FlowReadException:
        pass
    else:
        raise AssertionError("a foreign file must be refused")
