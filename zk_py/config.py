"""zoo.cfg and myid, read the way QuorumPeerConfig reads them.

Every key Apache ZooKeeper 3.8 accepts is recognised; keys zk_py does not act on are
accepted and listed (so an Apache config works unchanged), unknown keys are logged,
and an invalid value raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("zk_py.config")


class ConfigError(ValueError):
    """An invalid zoo.cfg value or a missing required key; the message names the key."""


@dataclass(slots=True)
class ServerSpec:
    """One ``server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]`` line."""

    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str = "participant"
    client_host: str | None = None
    client_port: int | None = None


@dataclass(slots=True)
class ZkConfig:
    path: Path | None = None
    tick_time: int = 3000
    data_dir: Path = Path("/var/lib/zookeeper")
    data_log_dir: Path | None = None
    client_port: int = 2181
    client_port_address: str = "0.0.0.0"
    max_client_cnxns: int = 60
    min_session_timeout: int = -1
    max_session_timeout: int = -1
    snap_count: int = 100_000
    autopurge_snap_retain_count: int = 3
    autopurge_purge_interval: int = 0
    four_letter_whitelist: frozenset[str] = frozenset({"srvr"})
    jute_maxbuffer: int = 0xFFFFF
    super_digest: str | None = None
    readonly_mode: bool = False
    init_limit: int = 10
    sync_limit: int = 5
    servers: dict[int, ServerSpec] = field(default_factory=dict)
    peer_type: str = "participant"
    standalone_enabled: bool = True
    reconfig_enabled: bool = False
    prealloc_kb: int = 65536
    force_sync: bool = True
    extended_types: bool = False
    container_check_ms: int = 60_000
    global_outstanding_limit: int = 1000
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    my_id: int = 0
    unknown: dict[str, str] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.data_log_dir or self.data_dir

    @property
    def min_timeout(self) -> int:
        return self.min_session_timeout if self.min_session_timeout > 0 else 2 * self.tick_time

    @property
    def max_timeout(self) -> int:
        return self.max_session_timeout if self.max_session_timeout > 0 else 20 * self.tick_time

    @property
    def standalone(self) -> bool:
        return not self.servers or (len(self.servers) == 1 and self.standalone_enabled)


ALL_4LW = frozenset(
    [
        "conf",
        "cons",
        "crst",
        "dump",
        "envi",
        "ruok",
        "srst",
        "srvr",
        "stat",
        "wchs",
        "wchc",
        "wchp",
        "dirs",
        "mntr",
        "isro",
        "hash",
        "gtmk",
        "stmk",
    ]
)

# Keys Apache accepts that zk_py does not act on (yet): accepted silently so configs port as they are.
_ACCEPTED = {
    "secureClientPort",
    "secureClientPortAddress",
    "electionAlg",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "clientPortListenBacklog",
    "quorumListenOnAllIPs",
    "syncEnabled",
    "dynamicConfigFile",
    "skipACL",
    "admin.enableServer",
    "admin.serverPort",
    "admin.serverAddress",
    "admin.idleTimeout",
    "admin.commandURL",
    "metricsProvider.exportJvmInfo",
    "serverCnxnFactory",
    "commitLogCount",
    "snapSizeLimitInKb",
    "txnLogSizeLimitInKb",
    "maxCnxns",
    "connectToLearnerMasterLimit",
    "multiAddress.enabled",
    "sslQuorum",
    "portUnification",
    "cnxTimeout",
    "leaderServes",
    "audit.enable",
    "zookeeper.request_throttler.shutdownTimeout",
    "initialConfig",
}


def _int(key: str, value: str, minimum: int | None = None) -> int:
    try:
        v = int(value.strip())
    except ValueError:
        raise ConfigError(f"{key}: invalid number {value!r}") from None
    if minimum is not None and v < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {v}")
    return v


def _bool(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "yes"):
        return True
    if v in ("false", "no"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _port(key: str, value: str) -> int:
    p = _int(key, value)
    if not 0 < p < 65536:
        raise ConfigError(f"{key}: port out of range: {p}")
    return p


def parse_server(key: str, value: str) -> ServerSpec:
    try:
        sid = int(key.split(".", 1)[1])
    except ValueError:
        raise ConfigError(f"{key}: server id must be a number") from None
    if not 0 <= sid <= 255:
        raise ConfigError(f"{key}: server id must be between 0 and 255")
    main, _, client = value.strip().partition(";")
    parts = main.split(":")
    if len(parts) not in (3, 4):
        raise ConfigError(
            f"{key}: expected host:quorumPort:electionPort[:participant|observer], got {value!r}"
        )
    role = parts[3] if len(parts) == 4 else "participant"
    if role not in ("participant", "observer"):
        raise ConfigError(f"{key}: role must be participant or observer, got {role!r}")
    spec = ServerSpec(sid, parts[0], _port(key, parts[1]), _port(key, parts[2]), role)
    if client:
        chost, _, cport = client.rpartition(":")
        spec.client_host = chost or None
        spec.client_port = _port(key, cport)
    return spec


def parse(text: str, path: Path | None = None) -> ZkConfig:
    """Parse zoo.cfg text (java.util.Properties-style key=value lines)."""
    cfg = ZkConfig(path=path)
    have_port = False
    prometheus = False
    metrics_port = 7000
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        if "=" not in line:
            raise ConfigError(f"line {lineno}: expected key=value, got {line!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        bare = key.removeprefix("zookeeper.")
        if key == "tickTime":
            cfg.tick_time = _int(key, value, 1)
        elif key == "dataDir":
            cfg.data_dir = Path(value)
        elif key == "dataLogDir":
            cfg.data_log_dir = Path(value)
        elif key == "clientPort":
            cfg.client_port = _port(key, value)
            have_port = True
        elif key == "clientPortAddress":
            cfg.client_port_address = value
        elif key == "maxClientCnxns":
            cfg.max_client_cnxns = _int(key, value, 0)
        elif key == "minSessionTimeout":
            cfg.min_session_timeout = _int(key, value)
        elif key == "maxSessionTimeout":
            cfg.max_session_timeout = _int(key, value)
        elif bare == "snapCount":
            cfg.snap_count = _int(key, value, 2)
        elif key == "autopurge.snapRetainCount":
            cfg.autopurge_snap_retain_count = max(3, _int(key, value, 0))
        elif key == "autopurge.purgeInterval":
            cfg.autopurge_purge_interval = _int(key, value, 0)
        elif bare == "4lw.commands.whitelist":
            words = {w.strip() for w in value.split(",") if w.strip()}
            if "*" in words:
                cfg.four_letter_whitelist = ALL_4LW
            else:
                bad = words - ALL_4LW
                if bad:
                    raise ConfigError(f"{key}: unknown four-letter words {sorted(bad)}")
                cfg.four_letter_whitelist = frozenset(words | {"srvr"})  # upstream always allows srvr
        elif key == "jute.maxbuffer":
            cfg.jute_maxbuffer = _int(key, value, 1)
        elif bare == "DigestAuthenticationProvider.superDigest":
            if ":" not in value:
                raise ConfigError(f"{key}: expected user:base64digest")
            cfg.super_digest = value
        elif key == "readonlymode.enabled":
            cfg.readonly_mode = _bool(key, value)
        elif key == "initLimit":
            cfg.init_limit = _int(key, value, 1)
        elif key == "syncLimit":
            cfg.sync_limit = _int(key, value, 1)
        elif key.startswith("server."):
            spec = parse_server(key, value)
            cfg.servers[spec.sid] = spec
        elif key == "peerType":
            if value not in ("participant", "observer"):
                raise ConfigError(f"{key}: must be participant or observer")
            cfg.peer_type = value
        elif key == "standaloneEnabled":
            cfg.standalone_enabled = _bool(key, value)
        elif key == "reconfigEnabled":
            cfg.reconfig_enabled = _bool(key, value)
        elif bare == "preAllocSize":
            cfg.prealloc_kb = _int(key, value, 0)
        elif bare == "forceSync":
            cfg.force_sync = _bool(key, value)
        elif bare == "extendedTypesEnabled":
            cfg.extended_types = _bool(key, value)
        elif bare == "znode.container.checkIntervalMs":
            cfg.container_check_ms = _int(key, value, 10)
        elif key == "globalOutstandingLimit":
            cfg.global_outstanding_limit = _int(key, value, 1)
        elif key == "metricsProvider.className":
            prometheus = "Prometheus" in value
        elif key == "metricsProvider.httpPort":
            metrics_port = _port(key, value)
        elif key == "metricsProvider.httpHost":
            cfg.metrics_host = value
        elif key in _ACCEPTED or bare in _ACCEPTED:
            cfg.ignored[key] = value
        else:
            cfg.unknown[key] = value
    if (
        cfg.min_session_timeout > 0
        and cfg.max_session_timeout > 0
        and cfg.min_session_timeout > cfg.max_session_timeout
    ):
        raise ConfigError("minSessionTimeout must not be larger than maxSessionTimeout")
    if prometheus:
        cfg.metrics_port = metrics_port
    if not have_port and not any(s.client_port for s in cfg.servers.values()):
        raise ConfigError("clientPort is not set")
    return cfg


def load(path: Path) -> ZkConfig:
    """Read zoo.cfg and, when server.N lines are present, dataDir/myid."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    if "dataDir" not in {ln.split("=", 1)[0].strip() for ln in text.splitlines() if "=" in ln}:
        raise ConfigError("dataDir is not set")
    cfg = parse(text, path)
    for key in cfg.unknown:
        log.warning("zoo.cfg: unknown key %s (passed over)", key)
    myid = cfg.data_dir / "myid"
    if myid.exists():
        try:
            cfg.my_id = int(myid.read_text().strip())
        except ValueError:
            raise ConfigError(f"myid: {myid} must hold a number") from None
    elif not cfg.standalone:
        raise ConfigError(f"myid: {myid} is missing (needed with server.N lines)")
    if cfg.servers and cfg.my_id and cfg.my_id not in cfg.servers:
        raise ConfigError(f"myid: {cfg.my_id} has no server.{cfg.my_id} line")
    return cfg
