import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.coretypes.multidict import MultiDict, MultiDictView
from gateway.coretypes.serializable import Serializable


class CaseInsensitive(MultiDict):
    __slots__ = ()

    @staticmethod
    def _kconv(key):
        return key.lower()


def test_getitem_returns_first_value_and_get_all_every_value():
    md = MultiDict([("a", "1"), ("b", "2"), ("a", "3")])
    assert md["a"] == "1"
    assert md.get_all("a") == ["1", "3"]
    assert md.get_all("missing") == []
    with pytest.raises(KeyError):
        md["missing"]
    assert md.get("missing", "dflt") == "dflt"


def test_len_iter_contains_count_keys_once():
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert len(md) == 2
    assert list(md) == ["a", "b"]
    assert "a" in md and "c" not in md


def test_setitem_replaces_all_values_in_place():
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    md["a"] = 9
    assert md.fields == (("a", 9), ("b", 2))
    md["c"] = 4
    assert md.fields == (("a", 9), ("b", 2), ("c", 4))


def test_set_all_keeps_positions_and_appends_surplus():
    md = MultiDict([("a", 1), ("b", 2), ("a", 3), ("c", 4)])
    md.set_all("a", [10, 30, 50])
    assert md.fields == (("a", 10), ("b", 2), ("a", 30), ("c", 4), ("a", 50))
    md.set_all("a", [7])
    assert md.fields == (("a", 7), ("b", 2), ("c", 4))
    md.set_all("a", [])
    assert "a" not in md


def test_add_insert_delete():
    md = MultiDict([("a", 1)])
    md.add("a", 2)
    md.insert(0, "z", 0)
    assert md.fields == (("z", 0), ("a", 1), ("a", 2))
    del md["a"]
    assert md.fields == (("z", 0),)
    with pytest.raises(KeyError):
        del md["a"]


def test_keys_values_items_multi():
    md = MultiDict([("a", 1), ("b", 2), ("a", 3)])
    assert list(md.keys()) == ["a", "b"]
    assert list(md.keys(multi=True)) == ["a", "b", "a"]
    assert list(md.values()) == [1, 2]
    assert list(md.values(multi=True)) == [1, 2, 3]
    assert list(md.items()) == [("a", 1), ("b", 2)]
    assert list(md.items(multi=True)) == [("a", 1), ("b", 2), ("a", 3)]


def test_pop_update_setdefault_from_mutablemapping():
    md = MultiDict([("a", 1), ("a", 2)])
    assert md.pop("a") == 1
    assert "a" not in md
    md.update({"x": 5})
    assert md.setdefault("x", 7) == 5
    assert md.setdefault("y", 7) == 7
    assert md.fields == (("x", 5), ("y", 7))


def test_equality_compares_fields_and_order():
    assert MultiDict([("a", 1)]) == MultiDict([("a", 1)])
    assert MultiDict([("a", 1), ("b", 2)]) != MultiDict([("b", 2), ("a", 1)])
    assert MultiDict([("a", 1)]) != {"a": 1}


def test_case_insensitive_subclass():
    md = CaseInsensitive([("Host", "x"), ("HOST", "y")])
    assert md["host"] == "x"
    assert md.get_all("hOsT") == ["x", "y"]
    assert len(md) == 1
    md["host"] = "z"
    assert md.fields == (("Host", "z"),)  # original spelling kept


def test_state_round_trip_and_copy():
    md = MultiDict([("a", b"\x00"), ("b", "ü")])
    state = md.get_state()
    assert state == (("a", b"\x00"), ("b", "ü"))
    assert MultiDict.from_state(state) == md
    other = MultiDict()
    other.set_state([["a", b"\x00"], ["b", "ü"]])  # lists, as some file formats return
    assert other == md
    c = md.copy()
    c["a"] = b"changed"
    assert md["a"] == b"\x00"
    assert isinstance(md, Serializable)


def test_built_from_another_multidict_keeps_duplicates():
    md = MultiDict([("a", 1), ("a", 2)])
    assert MultiDict(md).fields == (("a", 1), ("a", 2))


def test_repr_shows_fields():
    assert repr(MultiDict([("a", 1)])) == "MultiDict[('a', 1)]"


def test_view_reads_and_writes_through():
    store = {"fields": (("a", "1"), ("b", "2"))}

    def getter():
        return store["fields"]

    def setter(value):
        store["fields"] = value

    view = MultiDictView(getter, setter)
    assert view["a"] == "1"
    view["a"] = "x"
    assert store["fields"] == (("a", "x"), ("b", "2"))
    view.add("c", "3")
    del view["b"]
    assert store["fields"] == (("a", "x"), ("c", "3"))
    detached = view.copy()
    assert isinstance(detached, MultiDict) and detached.fields == store["fields"]
    detached["a"] = "y"
    assert store["fields"][0] == ("a", "x")
    view.set_state([("q", "1")])
    assert view.get_state() == (("q", "1"),)
    with pytest.raises(NotImplementedError):
        MultiDictView.from_state(())


@given(st.lists(st.tuples(st.sampled_from("abcAB"), st.integers())))
def test_get_all_matches_a_naive_model(pairs):
    md = MultiDict(pairs)
    for key in "abcAB":
        assert md.get_all(key) == [v for k, v in pairs if k == key]
    assert len(md) == len({k for k, _ in pairs})
    assert MultiDict.from_state(md.get_state()) == md
