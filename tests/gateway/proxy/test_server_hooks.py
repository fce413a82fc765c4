from gateway import hooks
from gateway.proxy import server_hooks
from gateway.proxy.server_hooks import ServerConnectionHookData
from gateway.test import tflow


def test_hook_data_holds_both_ends():
    client, server = tflow.tclient_conn(), tflow.tserver_conn()
    data = ServerConnectionHookData(server=server, client=client)
    assert data.server is server and data.client is client


def test_hooks_are_reexported_with_mitmproxy_names():
    assert server_hooks.ClientConnectedHook is hooks.ClientConnectedHook
    names = {
        server_hooks.ClientConnectedHook.name,
        server_hooks.ClientDisconnectedHook.name,
        server_hooks.ServerConnectHook.name,
        server_hooks.ServerConnectedHook.name,
        server_hooks.ServerDisconnectedHook.name,
        server_hooks.ServerConnectErrorHook.name,
    }
    assert names == {
        "client_connected", "client_disconnected", "server_connect", "server_connected",
        "server_disconnected", "server_connect_error",
    }  # fmt: skip
    data = ServerConnectionHookData(tflow.tserver_conn(), tflow.tclient_conn())
    assert server_hooks.ServerConnectHook(data).args() == [data]
