"""``marathon-py``'s command line: Marathon 1.10's flags, their names, units (milliseconds) and defaults
(``MarathonConf.scala``, reference §8), so an operator's existing flag set carries over.  Also the
``InfoConfig`` that ``/v2/info`` shows for them and the ``CoreConfig`` the core runs with.

Beyond Marathon: ``--ssl_cert``/``--ssl_key`` (PEM files; Marathon takes a Java keystore) and
``--log_level``.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from marathon_py.http.auth import BasicAuth
from marathon_py.http.system import InfoConfig
from marathon_py.instances import TrackerConfig
from marathon_py.launcher import LaunchConfig
from marathon_py.matcher import MatchConfig
from marathon_py.reactor import CoreConfig
from marathon_py.store import StoreConfig
from paas_common.zkleader import ZkUrl, ZkUrlError, parse_zk_url

PROG = "marathon-py"


def _ms(text: str) -> float:
    """A Marathon duration flag: milliseconds, as seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid milliseconds {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value / 1000.0


def _zk(text: str) -> ZkUrl:
    try:
        return parse_zk_url(text)
    except ZkUrlError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="A Marathon 1.10-compatible framework for Mesos.")
    add = p.add_argument
    add("--master", required=True, help="zk://host:port/mesos or host:port[,host:port] of the Mesos masters")
    add("--zk", type=_zk, default=_zk("zk://localhost:2181/marathon"), help="where state and election live")
    add("--hostname", default=None, help="advertised to the other instances and Mesos (default: this host)")
    add("--http_address", default="0.0.0.0", help="address the API listens on")
    add("--http_port", type=int, default=8080)
    add("--https_address", default=None, help="default: --http_address")
    add("--https_port", type=int, default=8443)
    add("--disable_http", action="store_true", help="serve HTTPS only (needs --ssl_cert and --ssl_key)")
    add("--ssl_cert", default=None, help="PEM certificate chain: serve HTTPS on --https_port")
    add("--ssl_key", default=None, help="PEM private key of --ssl_cert")
    add("--http_credentials", default=None, metavar="USER:PASSWORD", help="HTTP basic auth")
    add("--http_realm", default="Mesosphere")
    add("--framework_name", default="marathon")
    add("--mesos_role", default="*")
    add("--mesos_user", default=None, help="default: the user running marathon-py")
    add("--mesos_authentication_principal", default=None)
    add("--webui_url", default=None)
    add("--failover_timeout", type=float, default=604800.0, help="seconds")
    add("--enable_features", default="", help="comma list, e.g. task_killing")
    add("--zk_session_timeout", type=_ms, default=10.0, metavar="MS")
    add("--zk_timeout", type=_ms, default=10.0, metavar="MS")
    add("--zk_max_versions", type=int, default=50)
    add("--zk_max_node_size", type=int, default=1_024_000)
    add("--zk_compression_threshold", type=int, default=64 * 1024)
    add("--disable_zk_compression", action="store_true")
    add("--on_elected_prepare_timeout", type=_ms, default=180.0, metavar="MS")
    add("--reconciliation_initial_delay", type=_ms, default=15.0, metavar="MS")
    add("--reconciliation_interval", type=_ms, default=600.0, metavar="MS")
    add("--scale_apps_interval", type=_ms, default=300.0, metavar="MS")
    add("--task_launch_timeout", type=_ms, default=300.0, metavar="MS")
    add("--task_launch_confirm_timeout", type=_ms, default=300.0, metavar="MS")
    add("--kill_retry_timeout", type=_ms, default=10.0, metavar="MS")
    add("--decline_offer_duration", type=_ms, default=120.0, metavar="MS")
    add("--min_revive_offers_interval", type=_ms, default=5.0, metavar="MS")
    add("--max_instances_per_offer", type=int, default=5)
    add("--max_running_deployments", type=int, default=100)
    add("--local_port_min", type=int, default=10000)
    add("--local_port_max", type=int, default=20000)
    add("--env_vars_prefix", default="")
    add("--event_stream_max_outstanding_messages", type=int, default=1024)
    add("--leader_proxy_connection_timeout", type=_ms, default=5.0, metavar="MS")
    add("--leader_proxy_read_timeout", type=_ms, default=10.0, metavar="MS")
    add("--log_level", default="INFO")
    return p


@dataclass(frozen=True)
class Options:
    args: argparse.Namespace
    hostname: str
    features: tuple[str, ...]

    @property
    def http_port(self) -> int | None:
        return None if self.args.disable_http else int(self.args.http_port)

    @property
    def https_port(self) -> int | None:
        return int(self.args.https_port) if self.args.ssl_cert else None

    @property
    def participant_id(self) -> str:
        """``host:port`` in the election (Marathon: the HTTP port unless HTTP is disabled)."""
        port = self.http_port if self.http_port is not None else self.https_port
        return f"{self.hostname}:{port}"

    @property
    def scheme(self) -> str:
        return "http" if self.http_port is not None else "https"

    def core_config(self) -> CoreConfig:
        a = self.args
        return CoreConfig(
            tracker=TrackerConfig(
                task_launch_timeout=a.task_launch_timeout,
                task_launch_confirm_timeout=a.task_launch_confirm_timeout,
                kill_retry_timeout=a.kill_retry_timeout,
                scale_apps_interval=a.scale_apps_interval,
            ),
            launch=LaunchConfig(
                decline_offer_duration=a.decline_offer_duration,
                min_revive_offers_interval=a.min_revive_offers_interval,
                roles=(a.mesos_role,),
                env_prefix=a.env_vars_prefix,
                match=replace(MatchConfig(), max_instances_per_offer=a.max_instances_per_offer),
            ),
            reconciliation_initial_delay=a.reconciliation_initial_delay,
            reconciliation_interval=a.reconciliation_interval,
            max_running_deployments=a.max_running_deployments,
            port_range=(a.local_port_min, a.local_port_max),
        )

    def store_config(self) -> StoreConfig:
        a = self.args
        return StoreConfig(
            max_versions=a.zk_max_versions,
            compression=not a.disable_zk_compression,
            compression_threshold=a.zk_compression_threshold,
            max_node_size=a.zk_max_node_size,
        )

    def info(self) -> InfoConfig:
        """What ``/v2/info`` reports (milliseconds, as Marathon)."""
        a = self.args

        def ms(seconds: float) -> int:
            return round(seconds * 1000)

        marathon: dict[str, Any] = {
            "master": a.master,
            "hostname": self.hostname,
            "framework_name": a.framework_name,
            "mesos_role": a.mesos_role,
            "mesos_user": a.mesos_user,
            "webui_url": a.webui_url,
            "failover_timeout": round(a.failover_timeout),
            "features": list(self.features),
            "env_vars_prefix": a.env_vars_prefix or None,
            "decline_offer_duration": ms(a.decline_offer_duration),
            "min_revive_offers_interval": ms(a.min_revive_offers_interval),
            "max_instances_per_offer": a.max_instances_per_offer,
            "local_port_min": a.local_port_min,
            "local_port_max": a.local_port_max,
            "reconciliation_initial_delay": ms(a.reconciliation_initial_delay),
            "reconciliation_interval": ms(a.reconciliation_interval),
            "scale_apps_interval": ms(a.scale_apps_interval),
            "task_launch_timeout": ms(a.task_launch_timeout),
            "task_launch_confirm_timeout": ms(a.task_launch_confirm_timeout),
            "on_elected_prepare_timeout": ms(a.on_elected_prepare_timeout),
            "leader_proxy_connection_timeout_ms": ms(a.leader_proxy_connection_timeout),
            "leader_proxy_read_timeout_ms": ms(a.leader_proxy_read_timeout),
        }
        zk = a.zk
        zookeeper = {
            "zk": f"zk://{zk.hosts}{zk.path}",
            "zk_session_timeout": ms(a.zk_session_timeout),
            "zk_timeout": ms(a.zk_timeout),
            "zk_max_versions": a.zk_max_versions,
            "zk_max_node_size": a.zk_max_node_size,
            "zk_compression": not a.disable_zk_compression,
            "zk_compression_threshold": a.zk_compression_threshold,
        }
        return InfoConfig.of(marathon, zookeeper, {"http_port": a.http_port, "https_port": a.https_port})


def env_flags(env: Mapping[str, str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    """Flags given as environment variables, as Marathon's launcher reads them: ``MARATHON_<FLAG>`` for
    ``--<flag>`` (``MARATHON_APP_*`` are the task variables Marathon sets, not flags); an on/off flag is set
    by any value but ``false``/``0``.  Names that are no flag are ignored (``MARATHON_FLAGS`` is the unit's
    own variable).  Secrets such as ``MARATHON_HTTP_CREDENTIALS`` stay off the command line, where every
    local user could read them."""
    actions = {a.dest: a for a in (parser or _parser())._actions if a.option_strings and a.dest != "help"}
    out: list[str] = []
    for name, value in sorted(env.items()):
        flag = name[len("MARATHON_") :].lower()
        action = actions.get(flag)
        if not name.startswith("MARATHON_") or name.startswith("MARATHON_APP") or action is None:
            continue
        if action.nargs == 0:  # store_true
            out += [f"--{flag}"] if value.strip().lower() not in ("false", "0") else []
        else:
            out.append(f"--{flag}={value}")
    return out


def parse(argv: list[str], env: Mapping[str, str] | None = None) -> Options:
    """Options, or argparse's exit 2 with the reason.  Flags in ``env`` (:func:`env_flags`) come first, so
    the command line wins, as with Marathon."""
    p = _parser()
    args = p.parse_args([*env_flags(env or {}, p), *argv])
    if (args.ssl_cert is None) != (args.ssl_key is None):
        p.error("--ssl_cert and --ssl_key go together")
    if args.disable_http and args.ssl_cert is None:
        p.error("--disable_http needs HTTPS (--ssl_cert and --ssl_key)")
    if not 0 < args.local_port_min < args.local_port_max < 65536:
        p.error("--local_port_min must be below --local_port_max, both in 1..65535")
    if args.http_credentials is not None:
        try:
            BasicAuth(args.http_credentials)
        except ValueError as e:
            p.error(str(e))
    features = tuple(f.strip() for f in args.enable_features.split(",") if f.strip())
    return Options(args, args.hostname or socket.getfqdn(), features)
