"""marathon-py's command line: Marathon's names, units and defaults, and flags from MARATHON_* variables."""

from __future__ import annotations

import pytest

from marathon_py.flags import env_flags, parse

MASTER = ["--master", "zk://127.0.0.1:2181/mesos"]


def test_marathon_units_and_defaults() -> None:
    args = parse([*MASTER, "--zk_session_timeout", "2500", "--http_port", "8081"]).args
    assert args.zk_session_timeout == 2.5  # milliseconds, as Marathon's
    assert (args.http_port, args.max_running_deployments, args.framework_name) == (8081, 100, "marathon")


def test_flags_come_from_marathon_variables_and_the_command_line_wins() -> None:
    env = {
        "MARATHON_MASTER": "zk://10.0.0.1:2181/mesos",
        "MARATHON_HTTP_CREDENTIALS": "ops:s3cret",
        "MARATHON_HTTP_PORT": "9090",
        "MARATHON_DISABLE_ZK_COMPRESSION": "",  # an on/off flag: set by its presence
        "MARATHON_APP_ID": "/nested",  # a task's variable, not a flag
        "MARATHON_FLAGS": "--http_port=1",  # the unit's own variable, not a flag
        "MARATHONX_ZK": "zk://wrong/x",
    }
    args = parse(["--http_port", "8081"], env).args
    assert args.master == "zk://10.0.0.1:2181/mesos" and args.http_credentials == "ops:s3cret"
    assert args.http_port == 8081 and args.disable_zk_compression is True
    assert args.zk.hosts == "localhost:2181"  # the default: MARATHONX_ZK is not Marathon's
    assert env_flags({"MARATHON_DISABLE_HTTP": "false", "MARATHON_HELP": "1"}) == []


def test_an_invalid_flag_from_the_environment_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(MASTER, {"MARATHON_HTTP_CREDENTIALS": "no-colon"})
    assert exited.value.code == 2 and "credentials" in capsys.readouterr().err.lower()
