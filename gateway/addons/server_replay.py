"""``server_replay``: answer requests with recorded responses instead of asking servers,
with mitmproxy's options and matching rules.

A request matches a recorded flow when scheme, method, path, query parameters, body,
host and port agree (each part can be ignored with a ``server_replay_ignore_*`` option;
``server_replay_use_headers`` adds headers).  Each recorded response is used once unless
``server_replay_nopop`` / ``server_replay_reuse``; requests without a match are forwarded,
killed or answered with a status code per ``server_replay_extra``.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.parse
from collections.abc import Sequence
from typing import Any

from gateway import ctx
from gateway.optmanager import OptionsError

log = logging.getLogger(__name__)

EXTRA_CHOICES = ["forward", "kill", "204", "400", "404", "500"]


class ServerReplay:
    def __init__(self) -> None:
        self.flowmap: dict[bytes, list[Any]] = {}

    def load(self, loader: Any) -> None:
        loader.add_option("server_replay_kill_extra", bool, False,
                          "Kill extra requests during replay (deprecated: use server_replay_extra=kill).")
        loader.add_option("server_replay_extra", str, "forward",
                          "Behaviour for extra requests during replay: forward them, kill them, or answer "
                          "with the given status code.", choices=EXTRA_CHOICES)
        loader.add_option("server_replay_reuse", bool, False,
                          "Reuse flows for server replay: each recorded response can answer any number "
                          "of requests; the first one stays in place.")
        loader.add_option("server_replay_nopop", bool, False,
                          "Do not remove a flow from the replay list once it has been used.")
        loader.add_option("server_replay_refresh", bool, True,
                          "Refresh replayed responses: shift date, expires and last-modified headers and "
                          "cookie expiry by the time since the recording.")
        loader.add_option("server_replay_use_headers", Sequence[str], [],
                          "Request headers that must match for a recorded flow to be replayed.")
        loader.add_option("server_replay", Sequence[str], [], "Replay server responses from saved flow files.")
        loader.add_option("server_replay_ignore_content", bool, False,
                          "Ignore request content when looking for a recorded flow.")
        loader.add_option("server_replay_ignore_params", Sequence[str], [],
                          "Query parameters to ignore when looking for a recorded flow.")
        loader.add_option("server_replay_ignore_payload_params", Sequence[str], [],
                          "Form parameters (urlencoded or multipart) in the body to ignore when looking "
                          "for a recorded flow.")
        loader.add_option("server_replay_ignore_host", bool, False,
                          "Ignore the request's host when looking for a recorded flow.")
        loader.add_option("server_replay_ignore_port", bool, False,
                          "Ignore the request's port when looking for a recorded flow.")
        loader.add_command("replay.server", self.load_flows)
        loader.add_command("replay.server.add", self.add_flows)
        loader.add_command("replay.server.stop", self.clear)
        loader.add_command("replay.server.count", self.count)

    # -- commands --------------------------------------------------------------------------
    def load_flows(self, flows: Sequence[Any]) -> None:
        """Replay responses from these flows (replacing any loaded before)."""
        self.flowmap = {}
        self.add_flows(flows)

    def add_flows(self, flows: Sequence[Any]) -> None:
        from gateway.http import HTTPFlow

        for f in flows:
            if isinstance(f, HTTPFlow) and f.response is not None:
                self.flowmap.setdefault(self._hash(f), []).append(f)

    def clear(self) -> None:
        self.flowmap = {}

    def count(self) -> int:
        return sum(len(v) for v in self.flowmap.values())

    # -- matching --------------------------------------------------------------------------
    def _hash(self, flow: Any) -> bytes:
        r = flow.request
        opts = ctx.options
        _, _, path, _, query, _ = urllib.parse.urlparse(r.url)
        queries = urllib.parse.parse_qsl(query, keep_blank_values=True)
        key: list[Any] = [str(r.scheme), str(r.method), str(path)]
        if not opts.server_replay_ignore_content:
            ignore_payload = opts.server_replay_ignore_payload_params
            form = None
            if ignore_payload:
                try:
                    form = r.multipart_form or None
                    if form is not None:
                        key.extend(
                            (k, v) for k, v in form.items(multi=True)
                            if (k.decode(errors="replace") if isinstance(k, bytes) else k) not in ignore_payload
                        )
                    else:
                        form = r.urlencoded_form or None
                        if form is not None:
                            key.extend((k, v) for k, v in form.items(multi=True) if k not in ignore_payload)
                except ValueError:
                    form = None
            if form is None:
                key.append(str(r.raw_content))
        if not opts.server_replay_ignore_host:
            key.append(r.pretty_host)
        if not opts.server_replay_ignore_port:
            key.append(r.port)
        ignore_params = opts.server_replay_ignore_params or []
        for name, value in queries:
            if name not in ignore_params:
                key.append(name)
                key.append(value)
        if opts.server_replay_use_headers:
            key.append([(h, r.headers.get(h)) for h in opts.server_replay_use_headers])
        return hashlib.sha256(repr(key).encode("utf8", "surrogateescape")).digest()

    def next_flow(self, flow: Any) -> Any | None:
        h = self._hash(flow)
        if h not in self.flowmap:
            return None
        if ctx.options.server_replay_reuse or ctx.options.server_replay_nopop:
            return next((f for f in self.flowmap[h] if f.response), None)
        ret = self.flowmap[h].pop(0)
        while not ret.response and self.flowmap[h]:
            ret = self.flowmap[h].pop(0)
        if not self.flowmap[h]:
            del self.flowmap[h]
        return ret

    # -- hooks -----------------------------------------------------------------------------
    def configure(self, updated: set[str]) -> None:
        if ctx.options.server_replay_kill_extra and "server_replay_kill_extra" in updated:
            log.warning("server_replay_kill_extra is deprecated, use server_replay_extra=kill")
        if "server_replay" in updated:
            self.clear()
            if ctx.options.server_replay:
                from gateway.io.framing import FlowReadException
                from gateway.io.reader import read_flows_from_paths

                try:
                    flows = read_flows_from_paths(ctx.options.server_replay)
                except FlowReadException as e:
                    raise OptionsError(str(e)) from e
                self.load_flows(flows)

    def request(self, flow: Any) -> None:
        if not self.flowmap or flow.response is not None or flow.error is not None:
            return
        rflow = self.next_flow(flow)
        if rflow is not None:
            response = rflow.response.copy()
            if ctx.options.server_replay_refresh:
                response.refresh()
            flow.response = response
            flow.is_replay = "response"
        elif ctx.options.server_replay_kill_extra or ctx.options.server_replay_extra == "kill":
            log.warning(f"server_replay: killed non-replay request {flow.request.url}")
            flow.kill()
        elif ctx.options.server_replay_extra != "forward":
            from gateway.http import Response

            flow.response = Response.make(int(ctx.options.server_replay_extra))
            flow.is_replay = "response"
