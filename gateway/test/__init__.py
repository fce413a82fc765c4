"""Test helpers shipped with the package (taddons, tflow), as mitmproxy.test."""
