"""A Mesos-compatible agent: psutil-measured resources, Docker/process containerizers, recovery."""
