"""The delivery-rate sampler (draft-cheng-iccrg-delivery-rate-estimation), with time injected."""

import pytest

from netstack.tcp.delivery import DeliverySampler

SEG = 1000


def steady(sampler, n, spacing, rtt, start_time=0.0):
    """Send n segments ``spacing`` apart, each ACKed ``rtt`` after it left; returns the samples."""
    events = []
    for i in range(n):
        events.append((start_time + i * spacing, "send", i))
        events.append((start_time + i * spacing + rtt, "ack", i))
    events.sort(key=lambda e: (e[0], e[1] == "send"))
    samples = []
    inflight = 0
    for t, kind, i in events:
        if kind == "send":
            sampler.on_send(i * SEG, (i + 1) * SEG, t, inflight, False)
            inflight += SEG
        else:
            inflight -= SEG
            samples.append(sampler.on_ack(t, SEG, (i + 1) * SEG, [], rtt * 0.99))  # min RTT
    return samples


def test_steady_flow_measures_its_sending_rate():
    s = DeliverySampler(0.0)
    samples = steady(s, 200, 0.001, 0.050)  # 1 MB/s, 50 ms RTT
    late = samples[100:]
    assert all(x is not None for x in late)
    for x in late:
        assert x.delivery_rate == pytest.approx(SEG / 0.001, rel=0.05)
        assert x.rtt == pytest.approx(0.050)
        assert not x.is_app_limited
    assert s.delivered == 200 * SEG


def test_app_limited_phase_marks_its_samples_until_its_data_is_delivered():
    s = DeliverySampler(0.0)
    s.on_send(0, SEG, 0.0, 0, False)
    s.mark_app_limited(SEG)  # nothing more to send, window not full
    s.on_send(SEG, 2 * SEG, 0.010, SEG, False)
    first = s.on_ack(0.050, SEG, SEG, [], None)
    second = s.on_ack(0.060, SEG, 2 * SEG, [], None)
    assert first is not None and not first.is_app_limited  # sent before the mark
    assert second is not None and second.is_app_limited  # sent while app-limited
    assert s.app_limited == 0  # cleared: everything up to the mark is delivered
    s.on_send(2 * SEG, 3 * SEG, 0.070, 0, False)
    third = s.on_ack(0.120, SEG, 3 * SEG, [], None)
    assert third is not None and not third.is_app_limited


def test_sack_delivers_the_newest_segment_and_the_cumulative_ack_does_not_count_it_twice():
    s = DeliverySampler(0.0)
    for i in range(10):
        s.on_send(i * SEG, (i + 1) * SEG, i * 0.001, i * SEG, False)
    # segment 0 lost; segments 1..9 SACKed by one ACK at t=0.060
    rs = s.on_ack(0.060, 9 * SEG, 0, [10 * SEG], None)
    assert rs is not None
    assert rs.prior_delivered == 0 and rs.delivered == 9 * SEG
    assert rs.rtt == pytest.approx(0.060 - 0.009)  # from the newest segment SACKed
    # the retransmission of segment 0 is delivered: one new segment, not ten
    s.on_send(0, SEG, 0.070, 0, True)
    rs = s.on_ack(0.120, SEG, 10 * SEG, [], None)
    assert s.delivered == 10 * SEG
    assert rs is not None and rs.delivered == SEG
    assert rs.rtt is None  # a retransmitted segment gives no RTT sample (Karn)


def test_interval_shorter_than_min_rtt_is_not_a_rate():
    s = DeliverySampler(0.0)
    s.on_send(0, SEG, 0.0, 0, False)
    s.on_send(SEG, 2 * SEG, 0.0, SEG, False)
    rs = s.on_ack(0.005, 2 * SEG, 2 * SEG, [], 0.050)  # 5 ms interval, 50 ms min RTT
    assert rs is not None and rs.delivery_rate == 0.0


def test_records_are_compacted_and_nothing_is_delivered_without_bytes():
    s = DeliverySampler(0.0)
    for i in range(10_000):
        s.on_send(i * SEG, (i + 1) * SEG, i * 1e-4, SEG, False)
        if i >= 10:
            s.on_ack(i * 1e-4, SEG, (i - 9) * SEG, [], None)
    assert len(s) == 10
    assert len(s._ends) < 10_000
    assert s.on_ack(2.0, 0, 10_000 * SEG, [], None) is None
