"""Sync decisions (pure functions over plain data) and the jobs that apply them."""
