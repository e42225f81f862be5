"""A lab whose checks need no probe of its own: labkit's generic probes serve them."""
