"""A Mesos-compatible agent: psutil-measured resources, Docker and process containerizers, checkpoint and recovery."""
