"""Two TcpConnections against each other in the deterministic simulator (virtual time)."""

import hashlib

import pytest

from netstack.tcp import TcpConfig, TcpState
from netstack.tcp.sim import LinkSpec, Simulator, pattern

RTT = 0.040


def run(data=b"", back=b"", link=None, cfg=None, seed=7, until=600.0, **kw):
    link = link or LinkSpec(delay=RTT / 2)
    cfg = cfg or TcpConfig()
    sim = Simulator(
        seed=seed,
        forward=link,
        backward=link,
        client_config=cfg,
        server_config=cfg,
        client_data=data,
        server_data=back,
        **kw,
    )
    return sim, sim.run(until=until)


def test_one_megabyte_each_way_without_loss():
    up, down = pattern(1 << 20, 1), pattern(1 << 20, 2)
    sim, r = run(up, down)
    assert bytes(sim.server.received) == up and bytes(sim.client.received) == down
    assert r.client_closed == r.server_closed == "closed"
    assert r.client_stats["retransmits"] == 0 or r.forward.dropped_queue > 0
    # the side that closed first lingers in TIME-WAIT, the other is gone
    assert {sim.client.conn.state, sim.server.conn.state} <= {TcpState.TIME_WAIT, TcpState.CLOSED}


@pytest.mark.parametrize("loss", [0.01, 0.05, 0.10])
@pytest.mark.parametrize("cc", ["cubic", "newreno"])
def test_lossy_reordering_duplicating_corrupting_link_delivers_exactly(loss, cc):
    link = LinkSpec(delay=0.02, loss=loss, reorder=0.05, duplicate=0.02, corrupt=0.005)
    up, down = pattern(300_000, 3), pattern(50_000, 4)
    sim, r = run(up, down, link=link, cfg=TcpConfig(congestion_control=cc, max_retries=30))
    assert hashlib.sha256(bytes(sim.server.received)).digest() == hashlib.sha256(up).digest()
    assert bytes(sim.client.received) == down
    assert r.client_closed == r.server_closed == "closed"
    assert r.forward.dropped_loss > 0 and r.client_stats["retransmits"] > 0
    assert sim.dropped_bad_checksum == r.forward.corrupted + r.backward.corrupted


@pytest.mark.parametrize(
    "options",
    [
        dict(sack=False),
        dict(timestamps=False),
        dict(window_scaling=False),
        dict(sack=False, timestamps=False),
    ],
)
def test_without_optional_options_transfer_is_exact(options):
    link = LinkSpec(delay=0.02, loss=0.03, reorder=0.05)
    up = pattern(200_000, 5)
    sim, r = run(up, link=link, cfg=TcpConfig(**options, max_retries=30))
    assert bytes(sim.server.received) == up
    assert r.client_closed == "closed"


def goodput(cfg, seconds=4.0, loss=0.0, seed=1):
    link = LinkSpec(delay=RTT / 2, bandwidth=50e6 / 8, loss=loss)
    sim = Simulator(seed=seed, forward=link, backward=link, client_config=cfg, server_config=cfg)
    sim.server.keep_data = False
    sim.client.close_after_send = False
    block = bytes(1 << 16)

    def refill(s):
        conn = s.client.conn
        while conn.send_space() >= len(block):
            conn.send(block)
        return False

    refill(sim)
    sim.run(until=seconds, stop=refill)
    return sim.server.received_count / seconds, sim


def test_window_scaling_lifts_the_64k_per_rtt_cap():
    cap = 65535 / RTT
    scaled, sim = goodput(TcpConfig())
    unscaled, _ = goodput(TcpConfig(window_scaling=False))
    assert unscaled <= cap * 1.02  # one connection cannot beat its window per round trip...
    assert scaled > 2.5 * cap  # ...unless the window scales and grows
    assert sim.server.conn._rcv_buf > TcpConfig().recv_buffer_initial  # auto-tuning grew it


def test_autotuning_stays_below_the_configured_maximum():
    cfg = TcpConfig(recv_buffer=512 << 10)
    rate, sim = goodput(cfg)
    assert sim.server.conn._rcv_buf <= 512 << 10
    assert rate <= (512 << 10) / RTT * 1.05


def test_slow_reader_applies_backpressure_and_memory_stays_bounded():
    up = pattern(400_000, 6)
    link = LinkSpec(delay=0.02)
    cfg = TcpConfig(recv_buffer=64 << 10, recv_buffer_initial=64 << 10)
    sim = Simulator(seed=3, forward=link, backward=link, client_config=cfg, server_config=cfg, client_data=up)
    sim.server.read_rate = 100_000  # bytes per second
    peak = 0

    def watch(s):
        nonlocal peak
        if s.server.conn is not None:
            peak = max(peak, s.server.unread)
        return False

    r = sim.run(until=100, stop=watch)
    assert bytes(sim.server.received) == up
    assert peak <= 64 << 10  # never more than the window's worth waiting for the reader
    # the reader's pace set the transfer's: all but the last window's worth was read first
    assert r.elapsed >= (400_000 - (64 << 10)) / 100_000


def test_simulation_is_deterministic():
    link = LinkSpec(delay=0.02, loss=0.05, reorder=0.1, duplicate=0.05)
    up = pattern(100_000, 9)
    _, a = run(up, link=link, seed=11)
    _, b = run(up, link=link, seed=11)
    assert (a.elapsed, a.steps, a.client_stats, a.server_stats) == (
        b.elapsed,
        b.steps,
        b.client_stats,
        b.server_stats,
    )


def test_loss_recovery_mostly_avoids_timeouts_with_sack():
    link = LinkSpec(delay=0.02, loss=0.02)
    up = pattern(2_000_000, 10)
    sim, r = run(up, link=link)
    assert bytes(sim.server.received) == up
    st = r.client_stats
    assert st["fast_retransmits"] > 0
    assert st["timeouts"] * 5 <= st["fast_retransmits"]
