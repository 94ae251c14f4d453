"""Test support: real ZooKeeper server processes (servers.py) and Apache's zkCli (zkcli.py)."""
