"""marathon_py: a Marathon 1.10 compatible Mesos framework (REST API v2, deployments, health, HA)."""
