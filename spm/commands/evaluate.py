"""``spm eval attribution``: the accuracy harness (``spm.evaluation``) against the naive rule."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    eval_app = typer.Typer(no_args_is_help=True, help="Accuracy harnesses")
    app.add_typer(eval_app, name="eval")

    @eval_app.command("attribution")
    def attribution(
        activities: Annotated[int, typer.Option(help="labelled activities to generate")] = 20_000,
        seed: Annotated[int, typer.Option(help="random seed")] = 1,
    ) -> None:
        """Deal precision and recall and rep accuracy of the production path, replayed with late CRM
        data, per trap, next to "newest open deal by domain"."""
        from spm.evaluation.attribution import run_evaluation

        report = run_evaluation(activities, seed)
        typer.echo(report.render())
