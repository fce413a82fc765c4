"""Options: declaration, typed updates, --set parsing, config files, change notification."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pytest

from gateway.options import Options
from gateway.optmanager import OptionsError, OptManager


def make() -> OptManager:
    o = OptManager()
    o.add_option("flag", bool, False, "a flag")
    o.add_option("count", int, 1, "a count")
    o.add_option("name", str, "x", "a name")
    o.add_option("maybe", Optional[str], None, "optional text")  # noqa: UP045
    o.add_option("port", int | None, None, "optional int")
    o.add_option("hosts", Sequence[str], [], "a list")
    o.add_option("level", str, "info", "a choice", choices=["info", "debug"])
    o.add_option("ratio", float, 0.5, "a number")
    return o


def test_defaults_and_attribute_access():
    o = make()
    assert (o.flag, o.count, o.name, o.maybe, o.port, o.hosts, o.level, o.ratio) == (
        False, 1, "x", None, None, [], "info", 0.5,
    )
    with pytest.raises(AttributeError):
        _ = o.nothing


def test_update_changes_value_and_reports_changes():
    o = make()
    seen: list[set[str]] = []
    o.changed.connect(seen.append)
    o.update(count=5, name="y")
    assert o.count == 5 and o.name == "y"
    assert seen == [{"count", "name"}]
    assert o.has_changed("count") and not o.has_changed("flag")
    o.count = 7
    assert o.count == 7 and seen[-1] == {"count"}


@pytest.mark.parametrize(
    "name,value",
    [("flag", "yes"), ("count", "3"), ("count", True), ("name", 3), ("hosts", "a"), ("hosts", [1]), ("port", "80")],
)
def test_update_rejects_wrong_types(name, value):
    o = make()
    with pytest.raises(OptionsError) as e:
        o.update(**{name: value})
    assert name in str(e.value) and "\n" not in str(e.value)


def test_update_unknown_option_is_an_error():
    o = make()
    with pytest.raises(OptionsError, match="Unknown option"):
        o.update(nope=1)
    with pytest.raises(OptionsError, match="No such option"):
        o.nope = 1


def test_choices_enforced():
    o = make()
    o.update(level="debug")
    with pytest.raises(OptionsError, match="not one of"):
        o.update(level="loud")
    assert o.level == "debug"


def test_sequence_values_are_copies():
    o = make()
    o.update(hosts=["a"])
    o.hosts.append("b")  # must not change the stored value behind update()'s back
    assert o.hosts == ["a"]


def test_set_parses_each_type():
    o = make()
    o.set("flag", "count=0x10", "name=hello=world", "maybe=", "port=8080", "ratio=2.5", "level=debug")
    assert o.flag is True
    assert o.count == 16
    assert o.name == "hello=world"  # only the first = separates
    assert o.maybe == ""
    assert o.port == 8080
    assert o.ratio == 2.5
    assert o.level == "debug"
    o.set("flag=false", "maybe", "port=")
    assert o.flag is False and o.maybe is None and o.port is None


def test_set_sequence_collects_then_replaces():
    o = make()
    o.set("hosts=a", "hosts=b")
    assert o.hosts == ["a", "b"]
    o.set("hosts=c")
    assert o.hosts == ["c"]
    o.set("hosts")
    assert o.hosts == []


@pytest.mark.parametrize(
    "spec,message",
    [
        ("flag=maybe", "expects true or false"),
        ("count=ten", "not an integer"),
        ("count", "expects an integer"),
        ("ratio=x", "not a number"),
        ("level=loud", "not one of"),
        ("nope=1", "Unknown option(s): nope"),
        ("=1", "expected name=value"),
    ],
)
def test_set_errors_are_one_line(spec, message):
    o = make()
    with pytest.raises(OptionsError) as e:
        o.set(spec)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_set_twice_for_single_value_option_is_an_error():
    o = make()
    with pytest.raises(OptionsError, match="given 2 times"):
        o.set("count=1", "count=2")


def test_set_deferred_until_declared():
    o = make()
    o.set("later=5", "count=2", defer=True)
    assert o.count == 2
    assert "later" in o.deferred
    with pytest.raises(OptionsError, match="later"):
        o.check_deferred()
    o.add_option("later", int, 0, "declared late")
    o.process_deferred()
    assert o.later == 5 and not o.deferred
    o.check_deferred()


def test_bad_value_is_rolled_back_when_a_subscriber_refuses():
    o = make()

    def refuse(updated: set[str]) -> None:
        if o.count > 10:
            raise OptionsError("count too large")

    o.changed.connect(refuse)
    o.update(count=3)
    with pytest.raises(OptionsError, match="too large"):
        o.update(count=11, name="changed")
    assert o.count == 3 and o.name == "x"


def test_subscribe_only_for_named_options():
    o = make()
    calls = []
    o.subscribe(lambda opts, updated: calls.append(set(updated)), ["count"])
    o.update(name="y")
    o.update(count=2)
    assert calls == [{"count"}]
    with pytest.raises(OptionsError):
        o.subscribe(lambda *a: None, ["nope"])


def test_toml_config(tmp_path):
    o = make()
    path = tmp_path / "config.toml"
    path.write_text('flag = true\ncount = 4\nhosts = ["a", "b"]\nmaybe = "m"\nport = "9000"\nlater = 1\n')
    o.load_paths(str(path))
    assert (o.flag, o.count, o.hosts, o.maybe, o.port) == (True, 4, ["a", "b"], "m", 9000)
    assert o.deferred == {"later": 1}
    o.load_paths(str(tmp_path / "missing.toml"))  # missing files are skipped


@pytest.mark.parametrize(
    "text,message",
    [
        ("count = 'x'", "not an integer"),
        ("count = true", "expected int"),
        ("flag = ", "invalid TOML"),
        ("[table]\na = 1", "tables are not options"),
    ],
)
def test_toml_errors_name_the_file(tmp_path, text, message):
    o = make()
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(OptionsError) as e:
        o.load_paths(str(path))
    assert str(path) in str(e.value) and message in str(e.value)


def test_toml_unknown_without_defer_is_an_error():
    o = make()
    with pytest.raises(OptionsError, match="unknown option nope"):
        o.load_toml("nope = 1", defer=False)


def test_serialize_toml_round_trips():
    o = make()
    o.update(flag=True, hosts=['a"b', "c"], name="tab\there", port=1)
    text = o.serialize_toml()
    o2 = make()
    o2.load_toml(text, defer=False)
    assert (o2.flag, o2.hosts, o2.name, o2.port) == (True, ['a"b', "c"], "tab\there", 1)
    assert "count" not in text  # unchanged options left out


def test_reset():
    o = make()
    o.update(count=9, hosts=["z"])
    o.reset()
    assert o.count == 1 and o.hosts == []


def test_core_options_declared():
    opts = Options()
    for name in [
        "mode", "listen_host", "listen_port", "state_dir", "ssl_insecure", "ignore_hosts", "allow_hosts",
        "tcp_hosts", "udp_hosts", "proxyauth", "upstream_auth", "stream_large_bodies", "body_size_limit",
        "http2", "websocket", "rawtcp", "dns_server", "showhost", "flow_detail", "termlog_verbosity",
        "save_stream_file", "scripts", "keepserving",
    ]:
        assert name in opts, name
        assert opts.option(name).help
    assert opts.mode == ["wireguard"]
    assert opts.state_dir == "~/.gateway"
    assert Options(listen_port=8081).listen_port == 8081


def test_declaring_twice_is_refused():
    o = make()
    with pytest.raises(ValueError):
        o.add_option("count", int, 1, "again")
    with pytest.raises(TypeError):
        o.add_option("weird", dict, {}, "unsupported")


def test_names_clashing_with_methods_are_refused():
    o = make()
    with pytest.raises(ValueError, match="clashes"):
        o.add_option("items", Sequence[str], [], "would hide OptManager.items()")
