"""Activation: what leaves the warehouse for the tools marketing uses (segment exports)."""
