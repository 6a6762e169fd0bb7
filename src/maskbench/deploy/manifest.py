"""The bundle's manifest, as deploy reads it (defined in :mod:`maskbench.bundle_manifest`, which
the export side writes without importing deploy)."""

from ..bundle_manifest import FORMAT_VERSION, MANIFEST_FILE, BundleError, Manifest

__all__ = ["FORMAT_VERSION", "MANIFEST_FILE", "BundleError", "Manifest"]
