"""The registry: OCI types, where credentials may go, bounded HTTP reads, flux over `runner`."""
