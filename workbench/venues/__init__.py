"""Brokers behind one protocol (``base.Broker``): paper by default, real ones by explicit setting."""
