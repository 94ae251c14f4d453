"""zk_py: a ZooKeeper 3.8-compatible server in Python."""

__version__ = "0.1.0"
