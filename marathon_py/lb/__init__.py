"""``marathon-py lb``: marathon-lb's role — Marathon's apps and events in, a checked, reloaded HAProxy."""
