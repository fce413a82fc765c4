"""The `gateway` command: help, version, and one-line errors with non-zero exits (run as a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from gateway.version import VERSION


def gateway(*args: str, home: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": home, "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture
def home(tmp_path):
    return str(tmp_path)


def test_version(home):
    r = gateway("--version", home=home)
    assert r.returncode == 0
    assert r.stdout.strip() == f"gateway {VERSION}"


def test_help_lists_commands(home):
    r = gateway("--help", home=home)
    assert r.returncode == 0
    assert "up" in r.stdout and "run the gateway" in r.stdout
    assert "--version" in r.stdout


def test_no_command_prints_help_and_fails(home):
    r = gateway(home=home)
    assert r.returncode == 2
    assert "usage: gateway" in r.stdout


def test_up_help_documents_flags(home):
    r = gateway("up", "--help", home=home)
    assert r.returncode == 0
    for flag in ["--mode", "--listen-host", "--listen-port", "--script", "--set", "--quiet", "--flow-detail",
                 "--save", "--state-dir", "--ssl-insecure", "--proxyauth", "--conf", "--options"]:
        assert flag in r.stdout, flag
    assert "examples:" in r.stdout


def assert_one_line_error(r: subprocess.CompletedProcess[str], *fragments: str, code: int = 2) -> None:
    assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_unknown_flag(home):
    assert_one_line_error(gateway("up", "--no-such-flag", home=home), "gateway up: error: unrecognized arguments: --no-such-flag",
                          "gateway up --help")


def test_unknown_command(home):
    assert_one_line_error(gateway("frobnicate", home=home), "invalid choice: 'frobnicate'")


def test_bad_flag_value(home):
    assert_one_line_error(gateway("up", "-p", "eighty", home=home), "invalid int value: 'eighty'")
    assert_one_line_error(gateway("up", "--flow-detail", "9", home=home), "--flow-detail")


def test_unknown_set_option(home):
    assert_one_line_error(gateway("up", "--set", "no_such_option=1", home=home), "gateway up: error:",
                          "Unknown option(s): no_such_option")


@pytest.mark.parametrize(
    "spec,fragment",
    [
        ("listen_port=http", "option listen_port: not an integer: 'http'"),
        ("ssl_insecure=sometimes", "option ssl_insecure: expects true or false"),
        ("termlog_verbosity=loud", "'loud' is not one of"),
        ("=3", "expected name=value"),
    ],
)
def test_bad_set_value(home, spec, fragment):
    assert_one_line_error(gateway("up", "--set", spec, home=home), fragment)


def test_missing_script(home, tmp_path):
    assert_one_line_error(gateway("up", "-s", str(tmp_path / "missing.py"), home=home), "No such script", "missing.py")


def test_script_with_syntax_error(home, tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("def request(flow):\n    return (\n")
    assert_one_line_error(gateway("up", "-s", str(script), home=home), "broken.py:2: syntax error")


def test_script_failing_on_import(home, tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import json\nraise ValueError('needs configuration')\n")
    assert_one_line_error(gateway("up", "-s", str(script), home=home), "fails.py:2: ValueError: needs configuration")


def test_bad_mode(home):
    assert_one_line_error(gateway("up", "--mode", "sideways", home=home), "unknown mode 'sideways'")


def test_bad_config_file(home, tmp_path):
    conf = tmp_path / "gw.toml"
    conf.write_text("listen_port = 'many'\n")
    assert_one_line_error(gateway("up", "--conf", str(conf), home=home), str(conf), "not an integer")
    assert_one_line_error(gateway("up", "--conf", str(tmp_path / "absent.toml"), home=home), "no such config file")


def test_unknown_option_in_state_dir_config(home, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "config.toml").write_text("not_an_option = true\n")
    assert_one_line_error(gateway("up", "--state-dir", str(state), home=home), "Unknown option(s): not_an_option")


def test_options_listing(home):
    r = gateway("up", "--options", home=home)
    assert r.returncode == 0
    assert "listen_port  (optional int, default (none))" in r.stdout
    assert "flow_detail  (int, default 1)" in r.stdout
    assert "dumper_filter" in r.stdout  # declared by the dumper addon, not the core


RUN_SCRIPT = textwrap.dedent("""
    import asyncio
    import logging
    from gateway import ctx

    OUT = {out!r}

    def load(loader):
        loader.add_option("marker", str, "unset", "test marker")

    def running():
        with open(OUT, "w") as f:
            f.write(" ".join([ctx.options.marker, str(ctx.options.flow_detail), ",".join(ctx.options.mode),
                              str(ctx.options.listen_port), ctx.options.termlog_verbosity,
                              type(asyncio.get_running_loop()).__module__.split(".")[0]]))
        {action}
""")


def test_up_runs_scripts_with_config_flags_and_set(home, tmp_path):
    out = tmp_path / "seen.txt"
    script = tmp_path / "probe.py"
    script.write_text(RUN_SCRIPT.format(out=str(out), action="ctx.master.shutdown()"))
    state = tmp_path / "state"
    state.mkdir()
    # config < flags < --set
    (state / "config.toml").write_text('marker = "from-config"\nflow_detail = 3\nlisten_port = 1\n')
    r = gateway("up", "--state-dir", str(state), "--set", "server=false", "--mode", "regular@127.0.0.1:0",
                "-p", "0", "-s", str(script), "--set", "marker=from-set", "-q", "--flow-detail", "2", home=home)
    assert r.returncode == 0, r.stderr
    # uvloop is a dependency: the gateway runs on it.
    assert out.read_text() == "from-set 2 regular@127.0.0.1:0 0 error uvloop"


def test_up_exits_1_when_startup_logs_an_error(home, tmp_path):
    out = tmp_path / "seen.txt"
    script = tmp_path / "probe.py"
    script.write_text(RUN_SCRIPT.format(out=str(out), action="logging.error('port 9 is already in use')"))
    r = gateway("up", "--state-dir", str(tmp_path), "--set", "server=false", "-p", "0", "-s", str(script), home=home)
    assert r.returncode == 1
    assert "port 9 is already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_up_stops_cleanly_on_sigint(home, tmp_path):
    import signal
    import time

    ready = tmp_path / "ready"
    done = tmp_path / "done"
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(f"""
        def running():
            open({str(ready)!r}, "w").close()
        def done():
            open({str(done)!r}, "w").close()
    """))
    env = {**os.environ, "HOME": home}
    p = subprocess.Popen(
        [sys.executable, "-m", "gateway", "up", "--state-dir", str(tmp_path), "--set", "server=false", "-p", "0",
         "-s", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        for _ in range(600):  # bounded wait for start-up (up to 30 s on a busy machine)
            if ready.exists() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), p.stderr.read() if p.poll() is not None else "not ready"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert done.exists()
    assert "Traceback" not in err


def test_one_script_flag_takes_several_files_as_a_shell_glob_gives_them():
    """`gateway up -s examples/*.py` (the shell expands the glob) loaded nothing and failed
    with 'unrecognized arguments'."""
    from gateway.cli.main import _parse, build_parser

    args = _parse(build_parser(), ["up", "-s", "a.py", "b.py", "-s", "c.py", "-w", "f.gw"])
    assert args.scripts == ["a.py", "b.py", "c.py"]
    assert args.save_stream_file == "f.gw"


def test_every_command_takes_the_state_dir_from_GATEWAY_STATE_DIR(tmp_path, monkeypatch):
    """`gateway peers` followed $GATEWAY_STATE_DIR (as its help says) but `gateway up`, `ca`
    and `down` used ~/.gateway: with the variable set, a peer added while the gateway ran
    went to a directory the gateway did not watch."""
    state = tmp_path / "state"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "GATEWAY_STATE_DIR": str(state), "NO_COLOR": "1"}
    r = subprocess.run([sys.executable, "-m", "gateway", "ca"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert f"CA certificate: {state}/gateway-ca-cert.pem" in r.stdout
    assert not (home / ".gateway").exists()

    from gateway.cli import main as cli_main

    seen = {}
    monkeypatch.setenv("GATEWAY_STATE_DIR", str(state))
    monkeypatch.setattr(cli_main, "_dispatch", lambda args: seen.setdefault("state_dir", args.state_dir) and 0)
    cli_main.main(["up", "--mode", "regular"])
    assert seen["state_dir"] == str(state)
    seen.clear()
    cli_main.main(["up", "--state-dir", str(tmp_path / "flag")])  # the flag wins
    assert seen["state_dir"] == str(tmp_path / "flag")
