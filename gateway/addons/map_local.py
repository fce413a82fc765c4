"""``map_local``: answer matching requests from local files (mitmproxy's option).

Specs are ``[/flow-filter]/url-regex/file-or-directory``.  For a directory, the part of
the URL after the regex match (or the regex's first group) names the file inside it,
with ``index.html`` for directories; paths never leave the directory.  If some rule
matched but no candidate file exists, the answer is 404.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gateway import ctx
from gateway.addons.modify_headers import parse_spec
from gateway.optmanager import OptionsError

log = logging.getLogger(__name__)


class MapLocalSpec(NamedTuple):
    matches: Any
    regex: re.Pattern[str]
    local_path: Path


def parse_map_local_spec(option: str) -> MapLocalSpec:
    filt, regex, replacement = parse_spec(option)
    try:
        re_compiled = re.compile(regex)
    except re.error as e:
        raise ValueError(f"Invalid regular expression {regex!r} ({e})") from None
    try:
        path = Path(replacement).expanduser().resolve(strict=True)
    except FileNotFoundError as e:
        raise ValueError(f"Invalid file path: {replacement} ({e})") from None
    return MapLocalSpec(filt, re_compiled, path)


def _safe_path_join(root: Path, untrusted: str) -> Path:
    """Join without letting ``..`` or an absolute part escape ``root``."""
    base = root.resolve()
    joined = base.joinpath(*Path(untrusted).parts).resolve()
    if not joined.is_relative_to(base):
        raise ValueError("Untrusted paths.")
    return joined


def file_candidates(url: str, spec: MapLocalSpec) -> list[Path]:
    """Files that could answer ``url`` (which the spec's regex matches), best first."""
    m = spec.regex.search(url)
    assert m
    if m.groups():
        suffix = m.group(1) or ""
    else:
        suffix = re.split(spec.regex, url, maxsplit=1)[1]
        suffix = suffix.split("?")[0]
        suffix = suffix.strip("/")
    if suffix:
        decoded = urllib.parse.unquote(suffix)
        candidates = [decoded, f"{decoded}/index.html"]
        escaped = re.sub(r"[^0-9a-zA-Z\-_.=(),/]", "_", decoded)
        if decoded != escaped:
            candidates += [escaped, f"{escaped}/index.html"]
        try:
            return [_safe_path_join(spec.local_path, x) for x in candidates]
        except ValueError:
            return []
    return [spec.local_path / "index.html"]


class MapLocal:
    def __init__(self) -> None:
        self.replacements: list[MapLocalSpec] = []

    def load(self, loader: Any) -> None:
        loader.add_option(
            "map_local", Sequence[str], [],
            """
            Map remote resources to a local file using a pattern of the form
            "[/flow-filter]/url-regex/file-or-directory-path", where the
            separator can be any character.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "map_local" in updated:
            specs = []
            for option in ctx.options.map_local:
                try:
                    specs.append(parse_map_local_spec(option))
                except ValueError as e:
                    raise OptionsError(f"Cannot parse map_local option {option}: {e}") from e
            self.replacements = specs

    def request(self, flow: Any) -> None:
        if flow.response or flow.error or not flow.live:
            return
        from gateway.http import Response
        from gateway.version import VERSION

        url = flow.request.pretty_url
        all_candidates: list[Path] = []
        for spec in self.replacements:
            if not (spec.matches(flow) and spec.regex.search(url)):
                continue
            candidates = [spec.local_path] if spec.local_path.is_file() else file_candidates(url, spec)
            all_candidates.extend(candidates)
            local_file = next((c for c in candidates if c.is_file()), None)
            if local_file is None:
                continue
            headers = {"Server": f"gateway/{VERSION}"}
            mimetype = mimetypes.guess_type(str(local_file))[0]
            if mimetype:
                headers["Content-Type"] = mimetype
            try:
                contents = local_file.read_bytes()
            except OSError as e:
                log.warning(f"Could not read file: {e}")
                continue
            flow.response = Response.make(200, contents, headers)
            return  # the first matching rule answers
        if all_candidates:
            flow.response = Response.make(404)
            log.info(f"None of the local file candidates exist: {', '.join(str(x) for x in all_candidates)}")
