"""zk-py as an operator runs it: config errors, clean SIGTERM, unknown keys, metrics, 4lw formats."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from paasctl.fourlw import send_command
from tests.support.servers import ZkServer, free_port


def _run_cfg(tmp_path: Path, body: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "zk_py", str(cfg)], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "line,key",
    [
        ("tickTime=fast", "tickTime"),
        ("clientPort=99999", "clientPort"),
        ("maxClientCnxns=-3", "maxClientCnxns"),
        ("4lw.commands.whitelist=ruok,boom", "4lw.commands.whitelist"),
        ("forceSync=maybe", "forceSync"),
        ("server.1=onlyhost", "server.1"),
    ],
)
def test_invalid_value_stops_with_the_key_named(tmp_path: Path, line: str, key: str) -> None:
    res = _run_cfg(tmp_path, f"dataDir={tmp_path / 'd'}\nclientPort={free_port()}\n{line}\n")
    assert res.returncode == 2
    assert key in res.stderr


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    res = _run_cfg(tmp_path, f"clientPort={free_port()}\n")
    assert res.returncode == 2 and "dataDir" in res.stderr


def test_sigterm_stops_cleanly_and_unknown_keys_are_logged(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        f"tickTime=2000\ndataDir={tmp_path / 'd'}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
        "someFutureKey=1\nadmin.enableServer=false\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "zk_py", str(cfg)], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
        zk.start(timeout=15)
        zk.create("/before-stop", b"1")
        zk.stop()
        zk.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0
    assert "unknown key someFutureKey" in err
    assert "admin.enableServer" not in err  # known Apache keys are accepted silently
    assert "stopped at zxid" in err


def test_prometheus_metrics_endpoint(tmp_path: Path) -> None:
    mport = free_port()
    srv = ZkServer(
        "zk_py",
        tmp_path,
        extra_cfg={
            "metricsProvider.className": "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            "metricsProvider.httpPort": str(mport),
            "metricsProvider.httpHost": "127.0.0.1",
        },
    )
    with srv:
        zk = KazooClient(hosts=srv.hosts, timeout=10)
        zk.start(timeout=10)
        zk.create("/m", b"x")
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
            text = r.read().decode()
        zk.stop()
        zk.close()
    assert re.search(r"^znode_count 6$", text, re.M)
    assert re.search(r"^num_alive_connections 1$", text, re.M)
    assert "# TYPE packets_received gauge" in text


def test_four_letter_word_formats(tmp_path: Path) -> None:
    with ZkServer("zk_py", tmp_path) as srv:
        zk = KazooClient(hosts=srv.hosts, timeout=10)
        zk.start(timeout=10)
        zk.create("/app", b"")
        zk.create("/app/eph", b"", ephemeral=True)
        zk.exists("/app", watch=lambda e: None)
        zk.exists("/nope", watch=lambda e: None)
        assert srv.four_letter("ruok") == "imok"
        assert srv.four_letter("isro") == "rw"
        srvr = srv.four_letter("srvr")
        assert re.fullmatch(
            r"Zookeeper version: 3\.8\.0-\S+, built on .+\n"
            r"Latency min/avg/max: \d+/[\d.]+/\d+\nReceived: \d+\nSent: \d+\nConnections: 2\n"
            r"Outstanding: 0\nZxid: 0x[0-9a-f]+\nMode: standalone\nNode count: 7\n",
            srvr,
        ), srvr
        assert srv.four_letter("wchs") == "1 connections watching 2 paths\nTotal watches:2\n"
        sid = f"0x{zk.client_id[0]:x}"
        assert srv.four_letter("wchc") == f"{sid}\n\t/app\n\t/nope\n\n"
        dump = srv.four_letter("dump")
        assert f"Sessions with Ephemerals (1):\n{sid}:\n\t/app/eph\n" in dump
        cons = srv.four_letter("cons")
        assert f"sid={sid},lop=EXIS," in cons and "[0](queued=0,recved=1,sent=0)" in cons
        conf = srv.four_letter("conf")
        assert f"clientPort={srv.port}\n" in conf and "serverId=0\n" in conf
        assert "\nMode: standalone\n" in srv.four_letter("stat")
        mntr = dict(line.split("\t", 1) for line in srv.four_letter("mntr").splitlines())
        assert mntr["zk_server_state"] == "standalone"
        assert mntr["zk_znode_count"] == "7" and mntr["zk_ephemerals_count"] == "1"
        assert srv.four_letter("envi").startswith("Environment:\nzookeeper.version=3.8.0")
        assert srv.four_letter("srst") == "Server stats reset.\n"
        assert srv.four_letter("crst") == "Connection stats reset.\n"
        assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", srv.four_letter("dirs"))
        zk.stop()
        zk.close()


def test_lone_ensemble_member_waits_for_a_quorum(tmp_path: Path) -> None:
    """A member without a quorum answers ruok and srvr ("not serving") but refuses sessions."""
    d = tmp_path / "d"
    d.mkdir()
    (d / "myid").write_text("1\n")
    port = free_port()
    ports = [free_port() for _ in range(6)]
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(
        f"tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir={d}\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\n"
        f"server.1=127.0.0.1:{ports[0]}:{ports[1]}\nserver.2=127.0.0.1:{ports[2]}:{ports[3]}\n"
        f"server.3=127.0.0.1:{ports[4]}:{ports[5]}:observer\n"
    )
    proc = subprocess.Popen([sys.executable, "-m", "zk_py", str(cfg)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if send_command("127.0.0.1", port, "ruok", 1.0) == "imok":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "zk-py never answered ruok"
            time.sleep(0.05)
        assert "not currently serving requests" in send_command("127.0.0.1", port, "srvr", 2.0)
        assert send_command("127.0.0.1", port, "isro", 2.0) == "null"
        zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=2, connection_retry={"max_tries": 1})
        with pytest.raises(Exception):  # noqa: B017 - kazoo raises its own timeout type
            zk.start(timeout=2)
        zk.stop()
        zk.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_myid_must_match_a_server_line(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "myid").write_text("7\n")
    res = _run_cfg(
        tmp_path, f"dataDir={d}\nclientPort={free_port()}\nserver.1=h1:2888:3888\nserver.2=h2:2888:3888\n"
    )
    assert res.returncode == 2 and "myid" in res.stderr
