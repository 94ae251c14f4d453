"""A Mesos-compatible master: v1 scheduler API, DRF allocator, operator endpoints, HA through ZooKeeper."""
