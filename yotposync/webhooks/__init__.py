"""Receivers for webhooks that remote services send to yotposync."""
