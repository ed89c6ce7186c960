"""A tiny inventory package used as the codegen demo repository."""
