"""Generic building blocks of the flow model (multi-dicts, the state protocol)."""
