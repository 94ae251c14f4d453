"""The REST API v2 routes that need the orchestrator: ``/v2/apps``, ``/v2/groups``, ``/v2/deployments``,
``/v2/tasks`` and ``/v2/queue`` (reference §2.1 to §2.5). The daemon calls ``add_routes`` on the application
``marathon_py.http.create_app`` returned, before it starts; ``openapi.py`` describes every route added here.
"""

from __future__ import annotations

from aiohttp import web

from marathon_py.http.apps import AppsApi
from marathon_py.http.deployments import DeploymentsApi
from marathon_py.http.groupsapi import GroupsApi
from marathon_py.http.orchestrator import Orchestrator
from marathon_py.http.queue import QueueApi
from marathon_py.http.tasks import TasksApi


def add_routes(app: web.Application, orchestrator: Orchestrator) -> None:
    tasks = TasksApi(orchestrator)
    AppsApi(orchestrator, tasks).add_routes(app)
    GroupsApi(orchestrator).add_routes(app)
    DeploymentsApi(orchestrator).add_routes(app)
    tasks.add_routes(app)
    QueueApi(orchestrator).add_routes(app)
