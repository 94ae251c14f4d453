"""marathon_py.lb.config: Marathon apps JSON → HAProxy config, marathon-lb 1.15's rules (reference §9.2)."""

from __future__ import annotations

import random
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from marathon_py.lb.config import LbOptions, Server, render_config, server_ids, service_ports, task_hosts

OPTS = LbOptions(bind_address="127.0.0.1", http_port=8080, appid_port=9091, stats_port=9090)
HTTP_CHECK = {
    "protocol": "HTTP",
    "path": "/health",
    "portIndex": 0,
    "timeoutSeconds": 5,
    "intervalSeconds": 10,
    "gracePeriodSeconds": 300,
    "maxConsecutiveFailures": 3,
}


Doc = dict[str, Any]


def app(
    app_id: str = "/web",
    *,
    ports: tuple[int, ...] = (10000,),
    tasks: tuple[Doc, ...] = (),
    labels: dict[str, str] | None = None,
    checks: tuple[Doc, ...] = (),
    **extra: Any,
) -> Doc:
    doc: Doc = {
        "id": app_id,
        "labels": {"HAPROXY_GROUP": "external", **(labels or {})},
        "portDefinitions": [{"port": p, "protocol": "tcp"} for p in ports],
        "healthChecks": list(checks),
        "networks": [{"mode": "host"}],
        "tasks": list(tasks),
    }
    doc.update(extra)
    return doc


def task(
    tid: str,
    port: int = 31000,
    *,
    host: str = "10.0.0.1",
    state: str = "TASK_RUNNING",
    alive: list[bool] | None = None,
    **extra: Any,
) -> Doc:
    doc: Doc = {"id": tid, "host": host, "ports": [port], "state": state, **extra}
    if alive is not None:
        doc["healthCheckResults"] = [{"alive": a, "taskId": tid} for a in alive]
    return doc


def section(text: str, kind: str, name: str) -> list[str]:
    """The body lines of ``<kind> <name>`` (up to the next blank line)."""
    block = text.split(f"\n{kind} {name}\n", 1)[1]
    return block.split("\n\n", 1)[0].strip("\n").split("\n")


def servers(text: str, backend: str) -> list[str]:
    return [
        line.split()[2] for line in section(text, "backend", backend) if line.strip().startswith("server ")
    ]


def frontends(text: str) -> list[str]:
    return re.findall(r"^frontend (\S+)$", text, re.M)


def test_one_frontend_and_backend_per_service_port_named_after_the_app() -> None:
    web = app("/prod/web", ports=(10000, 10001), tasks=(task("t1", 31000),))
    web["tasks"][0]["ports"] = [31000, 31001]
    text = render_config([web], OPTS).text
    assert frontends(text) == [
        "marathon_http_in",
        "marathon_http_appid_in",
        "prod_web_10000",
        "prod_web_10001",
    ]
    assert section(text, "frontend", "prod_web_10000") == [
        "  bind 127.0.0.1:10000",
        "  mode tcp",
        "  use_backend prod_web_10000",
    ]
    assert servers(text, "prod_web_10000") == ["10.0.0.1:31000"]
    assert servers(text, "prod_web_10001") == ["10.0.0.1:31001"]
    assert "  balance roundrobin" in section(text, "backend", "prod_web_10000")


def test_group_filter_follows_has_group() -> None:
    ext = app("/ext", ports=(10000,), tasks=(task("a"),))
    internal = app("/int", ports=(10001,), tasks=(task("b"),), labels={"HAPROXY_GROUP": "internal"})
    both = app("/both", ports=(10002,), tasks=(task("c"),), labels={"HAPROXY_GROUP": "internal, external"})
    unlabelled = app("/none", ports=(10003,), tasks=(task("d"),))
    del unlabelled["labels"]["HAPROXY_GROUP"]
    apps = [ext, internal, both, unlabelled]

    def names(groups: set[str]) -> list[str]:
        opts = LbOptions(groups=frozenset(groups), http_port=None, appid_port=None, stats_port=None)
        return frontends(render_config(apps, opts).text)

    assert names({"external"}) == ["both_10002", "ext_10000"]
    assert names({"internal"}) == ["both_10002", "int_10001"]
    assert names({"*"}) == ["both_10002", "ext_10000", "int_10001", "none_10003"]  # '*' includes unlabelled


def test_per_port_group_label_overrides_the_app_group() -> None:
    web = app("/web", ports=(10000, 10001), tasks=(task("t"),), labels={"HAPROXY_1_GROUP": "internal"})
    web["tasks"][0]["ports"] = [31000, 31001]
    assert frontends(render_config([web], LbOptions(http_port=None, appid_port=None)).text) == ["web_10000"]
    internal = LbOptions(groups=frozenset({"internal"}), http_port=None, appid_port=None)
    assert frontends(render_config([web], internal).text) == ["web_10001"]


def test_only_tasks_in_routed_states_with_a_host() -> None:
    states = [
        "RUNNING",
        "LOST",
        "UNREACHABLE",
        "STAGING",
        "STARTING",
        "KILLING",
        "KILLED",
        "FAILED",
        "FINISHED",
        "GONE",
        "UNKNOWN",
    ]
    tasks = [task(f"t{i}", 31000 + i, state=f"TASK_{s}") for i, s in enumerate(states)]
    tasks.append(task("nohost", 32000, host=""))
    text = render_config([app(tasks=tuple(tasks))], OPTS).text
    assert servers(text, "web_10000") == ["10.0.0.1:31000", "10.0.0.1:31001", "10.0.0.1:31002"]


def test_with_health_checks_a_task_is_routed_when_some_result_is_alive() -> None:
    tasks = (
        task("alive", 31001, alive=[True]),
        task("dead", 31002, alive=[False]),
        task("mixed", 31003, alive=[False, True]),  # marathon-lb: any alive result routes the task
        task("unchecked", 31004, alive=[]),  # no result yet and nothing remembered
        task("unknown", 31005),  # no healthCheckResults at all and nothing remembered
    )
    rendered = render_config([app(tasks=tasks, checks=(HTTP_CHECK,))], OPTS)
    assert servers(rendered.text, "web_10000") == ["10.0.0.1:31001", "10.0.0.1:31003"]
    assert rendered.alive == {"alive": True, "dead": False, "mixed": True}


def test_missing_or_empty_results_keep_the_last_known_health() -> None:
    tasks = (
        task("was_up", 31001),
        task("was_down", 31002),
        task("fresh", 31003),
        task("up_then_new_leader", 31004, alive=[]),  # a new Marathon leader has not probed it yet
        task("down_then_new_leader", 31005, alive=[]),
    )
    remembered = {"was_up": True, "was_down": False, "gone": True}
    remembered |= {"up_then_new_leader": True, "down_then_new_leader": False}
    rendered = render_config([app(tasks=tasks, checks=(HTTP_CHECK,))], OPTS, alive=remembered)
    assert servers(rendered.text, "web_10000") == ["10.0.0.1:31001", "10.0.0.1:31004"]
    assert rendered.alive == {  # tasks no longer listed are forgotten
        "was_up": True,
        "was_down": False,
        "up_then_new_leader": True,
        "down_then_new_leader": False,
    }


def test_health_is_ignored_without_checks_or_when_switched_off() -> None:
    tasks = (task("dead", 31002, alive=[False]),)
    assert servers(render_config([app(tasks=tasks)], OPTS).text, "web_10000") == ["10.0.0.1:31002"]
    no_health = LbOptions(health_check=False, bind_address="127.0.0.1")
    with_checks = app(tasks=tasks, checks=(HTTP_CHECK,))
    assert servers(render_config([with_checks], no_health).text, "web_10000") == ["10.0.0.1:31002"]


def test_a_service_without_routable_tasks_is_left_out() -> None:
    text = render_config([app(tasks=(task("d", alive=[False]),), checks=(HTTP_CHECK,))], OPTS).text
    assert "web_10000" not in text


def test_vhost_routes_host_names_on_the_http_frontend() -> None:
    web = app(tasks=(task("t"),), labels={"HAPROXY_0_VHOST": "Web.example.com, www.example.com"})
    text = render_config([web], OPTS).text
    assert section(text, "frontend", "marathon_http_in") == [
        "  bind 127.0.0.1:8080",
        "  mode http",
        "  acl host_web_10000 req.hdr(host),field(1,:),lower -m str web.example.com www.example.com",
        "  use_backend web_10000 if host_web_10000",
    ]
    assert "  mode http" in section(text, "frontend", "web_10000")  # a vhost makes the service http
    assert "  option forwardfor" in section(text, "backend", "web_10000")
    no_http = render_config([web], LbOptions(http_port=None)).text
    assert "marathon_http_in" not in no_http and "acl host_" not in no_http


def test_invalid_vhosts_are_dropped_with_a_warning() -> None:
    web = app(tasks=(task("t"),), labels={"HAPROXY_0_VHOST": "ok.example.com,bad host,x;y"})
    rendered = render_config([web], OPTS)
    assert "-m str ok.example.com\n" in rendered.text
    assert any("HAPROXY_0_VHOST" in w and "bad host" in w for w in rendered.warnings)


def test_mode_label_then_http_check_then_vhost_decide_the_mode() -> None:
    def mode(labels: dict[str, str], checks: tuple[dict[str, Any], ...] = ()) -> str:
        text = render_config([app(tasks=(task("t", alive=[True]),), labels=labels, checks=checks)], OPTS).text
        return section(text, "frontend", "web_10000")[1].split()[1]

    assert mode({}) == "tcp"
    assert mode({}, (HTTP_CHECK,)) == "http"
    assert mode({}, ({**HTTP_CHECK, "protocol": "TCP"},)) == "tcp"
    assert mode({"HAPROXY_0_VHOST": "a.example"}) == "http"
    assert mode({"HAPROXY_0_VHOST": "a.example", "HAPROXY_0_MODE": "TCP"}) == "tcp"
    assert mode({"HAPROXY_0_MODE": "http"}) == "http"
    assert mode({"HAPROXY_0_MODE": "udp"}) == "tcp"


def test_balance_port_and_bind_address_labels() -> None:
    labels = {"HAPROXY_0_BALANCE": "leastconn", "HAPROXY_0_PORT": "12345", "HAPROXY_0_BIND_ADDR": "127.0.0.2"}
    text = render_config([app(tasks=(task("t"),), labels=labels)], OPTS).text
    assert section(text, "frontend", "web_12345")[0] == "  bind 127.0.0.2:12345"
    assert section(text, "backend", "web_12345")[0] == "  balance leastconn"
    assert servers(text, "web_12345") == ["10.0.0.1:31000"]


def test_labels_that_would_inject_directives_are_ignored() -> None:
    labels = {"HAPROXY_0_BALANCE": "roundrobin\n  server evil 1.2.3.4:80", "HAPROXY_0_PORT": "80 # x"}
    rendered = render_config([app(tasks=(task("t"),), labels=labels)], OPTS)
    assert "evil" not in rendered.text and "  balance roundrobin\n" in rendered.text
    assert frontends(rendered.text)[-1] == "web_10000"
    assert len(rendered.warnings) == 2


def test_a_nonsense_balance_reaches_the_file_for_haproxy_to_reject() -> None:
    """marathon-lb writes BALANCE as given; ``haproxy -c`` is the judge (the integration test forces this)."""
    text = render_config([app(tasks=(task("t"),), labels={"HAPROXY_0_BALANCE": "bogus"})], OPTS).text
    assert "  balance bogus\n" in text


def test_enabled_label_and_strict_mode() -> None:
    off = app("/off", ports=(10001,), tasks=(task("a"),), labels={"HAPROXY_0_ENABLED": "false"})
    on = app("/on", ports=(10002,), tasks=(task("b"),), labels={"HAPROXY_0_ENABLED": "true"})
    plain = app("/plain", ports=(10003,), tasks=(task("c"),))
    assert frontends(render_config([off, on, plain], LbOptions(http_port=None, appid_port=None)).text) == [
        "on_10002",
        "plain_10003",
    ]
    strict = LbOptions(http_port=None, appid_port=None, strict_mode=True)
    assert frontends(render_config([off, on, plain], strict).text) == ["on_10002"]


def test_http_services_are_reachable_by_app_id() -> None:
    both_http = {"HAPROXY_0_MODE": "http", "HAPROXY_1_MODE": "http"}
    web = app("/g/web", ports=(10000, 10001), tasks=(task("t"),), labels=both_http)
    web["tasks"][0]["ports"] = [31000, 31001]
    raw = app("/raw", ports=(10005,), tasks=(task("r"),))
    text = render_config([web, raw], OPTS).text
    assert section(text, "frontend", "marathon_http_appid_in")[2:] == [
        "  acl app__g_web hdr(x-marathon-app-id) -i /g/web",
        "  use_backend g_web_10000 if app__g_web",  # only an app's first http port, as marathon-lb
    ]


def test_stats_frontend_has_the_health_uri() -> None:
    lines = section(render_config([], OPTS).text, "listen", "stats")
    assert "  bind 127.0.0.1:9090" in lines and "  monitor-uri /_haproxy_health_check" in lines
    assert "listen stats" not in render_config([], LbOptions(stats_port=None)).text


def test_haproxy_checks_mirror_the_marathon_check() -> None:
    up = (task("t", alive=[True]),)
    http = render_config([app(tasks=up, checks=(HTTP_CHECK,))], OPTS).text
    backend = section(http, "backend", "web_10000")
    assert "  option  httpchk GET /health" in backend and "  timeout check 5s" in backend
    assert re.fullmatch(
        r"  server 10_0_0_1_31000 10\.0\.0\.1:31000 id \d+ check inter 10s fall 4", backend[-1]
    )
    tcp_check = {**HTTP_CHECK, "protocol": "TCP", "port": 40}
    backend = section(render_config([app(tasks=up, checks=(tcp_check,))], OPTS).text, "backend", "web_10000")
    assert not any("httpchk" in line for line in backend)
    assert backend[-1].endswith(" check inter 10s fall 4 port 40")
    command = {"protocol": "COMMAND", "command": {"value": "true"}, "intervalSeconds": 10}
    assert " check" not in render_config([app(tasks=up, checks=(command,))], OPTS).text


def test_bridge_networking_uses_service_ports_of_port_mappings() -> None:
    bridged = app(tasks=(task("t", 31555),), ports=())
    bridged["networks"] = [{"mode": "container/bridge"}]
    mapping = {"containerPort": 80, "hostPort": 0, "servicePort": 10080}
    bridged["container"] = {"type": "DOCKER", "portMappings": [mapping]}
    assert service_ports(bridged) == [10080]
    assert servers(render_config([bridged], OPTS).text, "web_10080") == ["10.0.0.1:31555"]


def test_container_networking_routes_to_the_task_ip_and_container_port() -> None:
    overlay = app(tasks=(task("t", ipAddresses=[{"ipAddress": "172.16.0.9", "protocol": "IPv4"}]),), ports=())
    overlay["tasks"][0]["ports"] = []
    overlay["networks"] = [{"mode": "container", "name": "dcos"}]
    overlay["container"] = {"type": "MESOS", "portMappings": [{"containerPort": 8080, "servicePort": 10100}]}
    assert task_hosts([overlay]) == set()  # nothing to resolve: the task's own IP is used
    text = render_config([overlay], OPTS, addresses={}).text
    assert section(text, "backend", "web_10100")[-1].startswith(
        "  server 10_0_0_1_172_16_0_9_8080 172.16.0.9:8080"
    )


def test_apps_without_service_ports_render_nothing() -> None:
    rendered = render_config([app(ports=(), tasks=(task("t"),))], OPTS)
    assert rendered.services == () and frontends(rendered.text) == [
        "marathon_http_in",
        "marathon_http_appid_in",
    ]


def test_tasks_without_ports_fall_back_to_the_port_definitions() -> None:
    """Host networking without task ports: marathon-lb takes ``portDefinitions`` as the host ports."""
    t = task("t")
    t["ports"] = []
    assert servers(render_config([app(tasks=(t,))], OPTS).text, "web_10000") == ["10.0.0.1:10000"]
    bare = app(tasks=(dict(t),))
    bare["portDefinitions"] = [{"protocol": "tcp"}]  # no port at all: no service, nothing to route
    assert render_config([bare], OPTS).services == ()


def test_task_hosts_are_resolved_by_the_caller() -> None:
    hosts = ("agent-1.example", "agent-2.example", "10.0.0.7")
    tasks = tuple(task(h[-1], 31001 + i, host=h) for i, h in enumerate(hosts))
    web = app(tasks=tasks)
    assert task_hosts([web]) == {"agent-1.example", "agent-2.example"}
    rendered = render_config([web], OPTS, addresses={"agent-1.example": "10.0.0.5"})
    assert servers(rendered.text, "web_10000") == ["10.0.0.7:31003", "10.0.0.5:31001"]  # sorted by host name
    assert any("agent-2.example" in w for w in rendered.warnings)
    assert "  server agent-1_example_10_0_0_5_31001 10.0.0.5:31001 " in rendered.text
    verbatim = render_config([web], OPTS).text  # no addresses: HAProxy resolves names itself
    assert "agent-2.example:31002" in verbatim


def test_a_port_is_bound_once() -> None:
    first = app("/a", ports=(10000,), tasks=(task("a"),))
    second = app("/b", ports=(10000,), tasks=(task("b"),))
    on_stats = app("/c", ports=(9090,), tasks=(task("c"),))
    rendered = render_config([second, on_stats, first], OPTS)
    assert [s.name for s in rendered.services] == ["a_10000"]
    assert len(rendered.warnings) == 2


def test_server_ids_are_stable_and_unique() -> None:
    many = [Server("h", f"10.0.{i // 250}.{i % 250}", 31000 + i) for i in range(3000)]
    ids = server_ids(many)
    assert len(set(ids)) == len(ids) and all(0 < i <= 32767 for i in ids)
    assert server_ids(many) == ids


def _cluster(rng: random.Random) -> list[dict[str, Any]]:
    apps = []
    for a in range(6):
        tasks = [
            task(f"app{a}.t{t}", 31000 + 10 * a + t, host=f"10.0.0.{t % 3}", alive=[rng.random() < 0.7])
            for t in range(4)
        ]
        labels = {"HAPROXY_0_VHOST": f"app{a}.example"} if a % 2 else {}
        checks = (HTTP_CHECK,) if a % 3 else ()
        apps.append(
            app(f"/g{a % 2}/app{a}", ports=(10000 + a,), tasks=tuple(tasks), labels=labels, checks=checks)
        )
    return apps


@given(st.randoms(use_true_random=False))
def test_output_does_not_depend_on_the_order_marathon_lists_things(rng: random.Random) -> None:
    apps = _cluster(random.Random(7))
    expected = render_config(apps, OPTS).text
    shuffled = [dict(a, tasks=rng.sample(a["tasks"], len(a["tasks"]))) for a in rng.sample(apps, len(apps))]
    assert render_config(shuffled, OPTS).text == expected


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
APP_KEYS = ["id", "labels", "portDefinitions", "ports", "container", "networks", "ipAddress", "healthChecks"]
TASK_KEYS = ["id", "host", "ports", "state", "ipAddresses", "healthCheckResults"]


def _mangled(template: Doc, keys: list[str]) -> st.SearchStrategy[Doc]:
    return st.dictionaries(st.sampled_from(keys), JSON, max_size=4).map(lambda junk: {**template, **junk})


@given(
    st.lists(_mangled(app(tasks=(task("t", alive=[True]),)), APP_KEYS), max_size=3),
    _mangled(task("u"), TASK_KEYS),
)
def test_malformed_marathon_json_never_breaks_the_render_or_the_file(apps: list[Doc], odd_task: Doc) -> None:
    """Whatever shape a field has, rendering goes on and no value can start a line of its own."""
    for a in apps:
        if isinstance(a.get("tasks"), list):
            a["tasks"].append(odd_task)
    text = render_config(apps, OPTS).text
    directive = re.compile(r"^(#.*|global|defaults|(listen|frontend|backend) [\w.\-]+|  \S.*|)$")
    assert all(directive.match(line) for line in text.split("\n"))
    assert "\r" not in text and "\x00" not in text
