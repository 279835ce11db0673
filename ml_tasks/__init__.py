"""Nightly reclustering: features in, model chosen, segments named, versions published."""
