"""Benchmarks of yotposync against the sandbox; `python -m benchmarks.run` runs them."""
