"""Built-in demo pieces: the upstream and queue simulator and the configs for `siaran demo` and `siaran init`."""
