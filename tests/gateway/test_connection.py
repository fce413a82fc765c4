import pytest

from gateway.certs import Cert, create_ca
from gateway.connection import Client, Connection, ConnectionState, Server
from gateway.net.server_spec import ServerSpec
from gateway.proxy.arrival import Arrival
from gateway.proxy.mode_specs import ProxyMode, WireGuardMode
from gateway.test import tflow


@pytest.fixture(scope="module")
def cert() -> Cert:
    _, ca = create_ca("gateway test CA", "gateway tests")
    return Cert(ca)


def test_client_attributes():
    c = tflow.tclient_conn()
    assert c.peername == ("10.0.0.2", 52044)
    assert c.address == c.peername
    assert c.sockname == ("93.184.216.34", 443)
    assert c.state is ConnectionState.OPEN and c.connected
    assert c.tls and c.tls_established
    assert c.sni == "example.com"
    assert c.alpn == b"http/1.1" and c.alpn_offers == [b"h2", b"http/1.1"]
    assert c.cipher == "TLS_AES_128_GCM_SHA256" and len(c.cipher_list) == 2
    assert c.tls_version == "TLSv1.3"
    assert c.timestamp_start < c.timestamp_tls_setup < c.timestamp_end
    assert isinstance(c.proxy_mode, WireGuardMode)
    assert c.wireguard_peer == "phone" and c.wireguard_key.endswith("=")
    assert c.tun_interface is None
    assert c.transport_protocol == "tcp"
    assert c.error is None and c.mitmcert is None
    assert isinstance(c, Connection)


def test_client_defaults():
    c = Client(peername=("127.0.0.1", 5000), sockname=("127.0.0.1", 8080))
    assert c.state is ConnectionState.CLOSED and not c.connected and not c.tls_established
    assert c.proxy_mode == ProxyMode.parse("regular")
    assert c.timestamp_start > 0 and c.timestamp_end is None
    assert c.certificate_list == () and c.alpn_offers == ()
    assert len(c.id) == 36
    assert c.id != Client(peername=("127.0.0.1", 5000), sockname=("127.0.0.1", 8080)).id


def test_server_attributes_and_defaults():
    s = tflow.tserver_conn()
    assert s.address == ("example.com", 443)
    assert s.peername == ("93.184.216.34", 443) and s.sockname == ("192.168.1.5", 40000)
    assert s.timestamp_tcp_setup is not None and s.via is None
    d = Server(address=("example.org", 80))
    assert d.peername is None and d.sockname is None and d.timestamp_start is None
    assert d.state is ConnectionState.CLOSED and not d.tls


def test_connection_state_flags():
    assert ConnectionState.OPEN == ConnectionState.CAN_READ | ConnectionState.CAN_WRITE
    c = tflow.tclient_conn()
    c.state = ConnectionState.CAN_READ  # half-closed
    assert not c.connected
    assert ConnectionState.CAN_READ in c.state and ConnectionState.CAN_WRITE not in c.state


def test_server_address_cannot_change_while_open():
    s = tflow.tserver_conn()
    with pytest.raises(RuntimeError):
        s.address = ("other.example", 443)
    with pytest.raises(RuntimeError):
        s.via = ServerSpec("http", ("proxy", 3128))
    s.address = ("example.com", 443)  # same value: fine
    s.state = ConnectionState.CLOSED
    s.address = ("other.example", 443)
    s.via = ServerSpec("http", ("proxy", 3128))
    assert s.address == ("other.example", 443)


def test_equality_and_hash_by_id():
    c = tflow.tclient_conn()
    same = Client.from_state(c.get_state())
    assert c == same and hash(c) == hash(same)
    assert c != tflow.tclient_conn()
    assert c != "client"
    assert len({c, same}) == 1


def test_client_state_round_trip_with_certificates(cert):
    c = tflow.tclient_conn(certificate_list=[cert], mitmcert=cert, error="reset by peer",
                           tun_interface="tun7")  # fmt: skip
    state = c.get_state()
    assert state["certificate_list"] == [cert.to_pem()]
    assert state["mitmcert"] == cert.to_pem()
    assert state["proxy_mode"] == "wireguard"
    assert state["wireguard_peer"] == "phone" and state["tun_interface"] == "tun7"
    assert "state" not in state  # a loaded connection is never open
    again = Client.from_state(state)
    assert again.get_state() == state
    assert again.certificate_list == [cert] and again.mitmcert == cert
    assert again.state is ConnectionState.CLOSED
    assert again.error == "reset by peer"


def test_server_state_round_trip(cert):
    s = tflow.tserver_conn(certificate_list=[cert], via=ServerSpec("https", ("proxy.local", 3128)))
    state = s.get_state()
    assert state["via"] == ("https", ("proxy.local", 3128))
    again = Server.from_state(state)
    assert again.get_state() == state
    assert again.via == ServerSpec("https", ("proxy.local", 3128)) and again.via.scheme == "https"
    # tuples returned as lists by a file format
    listy = {**state, "address": ["example.com", 443], "via": ["https", ["proxy.local", 3128]]}
    assert Server.from_state(listy).get_state() == state


def test_certificates_from_cryptography_objects_are_saved_as_pem(cert):
    c = tflow.tclient_conn(certificate_list=[cert.to_cryptography()])
    assert c.get_state()["certificate_list"] == [cert.to_pem()]


def test_copy_gets_new_id():
    c = tflow.tclient_conn()
    d = c.copy()
    assert d.id != c.id and d.peername == c.peername and d.wireguard_peer == "phone"


def test_from_arrival_wireguard_and_tun():
    a = Arrival(mode="wireguard@51821", transport="tcp", peername=("10.0.0.2", 40000),
                sockname=("93.184.216.34", 443), destination=("93.184.216.34", 443),
                link={"wireguard_peer": "laptop", "wireguard_key": "K2V5"})  # fmt: skip
    c = Client.from_arrival(a, timestamp_start=5.0)
    assert c.peername == ("10.0.0.2", 40000) and c.sockname == ("93.184.216.34", 443)
    assert c.proxy_mode.full_spec == "wireguard@51821"
    assert c.wireguard_peer == "laptop" and c.wireguard_key == "K2V5" and c.tun_interface is None
    assert c.state is ConnectionState.OPEN and c.timestamp_start == 5.0
    t = Client.from_arrival(Arrival(mode="tun:gw0", transport="udp", peername=("10.1.0.2", 5353),
                                    sockname=("10.1.0.1", 53), link={"tun_interface": "gw0"}))  # fmt: skip
    assert t.transport_protocol == "udp" and t.tun_interface == "gw0" and t.wireguard_peer is None


def test_repr_names_the_link():
    assert repr(tflow.tclient_conn()) == (
        "Client(10.0.0.2:52044, state=open, alpn=http/1.1, TLSv1.3, sni=example.com, wireguard=phone)"
    )
    assert str(tflow.tclient_conn(wireguard_peer=None, wireguard_key=None, tun_interface="tun0",
                                  peername=("::1", 5))).startswith("Client([::1]:5, ")  # fmt: skip
    assert "tun=tun0" in repr(tflow.tclient_conn(wireguard_peer=None, wireguard_key=None, tun_interface="tun0"))
    assert repr(tflow.tserver_conn()).startswith("Server(example.com:443, state=open")
