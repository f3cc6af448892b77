"""Commands added to ``spm``: each module defines ``register(app: typer.Typer) -> None``.

Keep imports of service code inside the command functions so ``spm --help`` stays fast.
"""
