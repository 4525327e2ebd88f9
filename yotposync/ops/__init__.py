"""Running yotposync as a service: systemd notifications, health and metrics, pings, the
webhook receiver, and the `check`, `explain`, `report` and `webhooks` commands."""
