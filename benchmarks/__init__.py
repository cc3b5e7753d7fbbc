"""Benchmarks of the bot, run from a checkout: `python -m benchmarks --help`."""
