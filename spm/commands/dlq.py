"""``spm dlq inspect|replay``: look into a topic's dead letters and send them back once fixed."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

TopicOption = Annotated[str, typer.Option("--topic", help="logical topic, e.g. activity-ingested")]


def register(app: typer.Typer) -> None:
    dlq_app = typer.Typer(no_args_is_help=True, help="Dead-letter queues")
    app.add_typer(dlq_app, name="dlq")

    @dlq_app.command("inspect")
    def inspect(
        topic: TopicOption,
        limit: Annotated[int, typer.Option(min=1, help="messages to show")] = 20,
    ) -> None:
        """Show dead letters with their provenance (reads from the start; commits nothing)."""
        from rich.console import Console
        from rich.table import Table

        from libs.common.kafka.dlq import UnknownTopic, dlq_topic, inspect_dead_letters
        from libs.common.settings import KafkaSettings

        try:
            resolved = dlq_topic(topic)
        except UnknownTopic as exc:
            raise typer.BadParameter(str(exc)) from None
        letters = asyncio.run(inspect_dead_letters(KafkaSettings(), resolved, limit))
        table = Table(title=f"{resolved.dlq}: {len(letters)} shown")
        for column in ("partition/offset", "tenant", "source", "service", "failed at", "replays", "error"):
            table.add_column(column)
        for letter in letters:
            p = letter.provenance
            table.add_row(
                f"{letter.partition}/{letter.offset}",
                letter.tenant or "",
                f"{p['dlq_source_topic']}[{p['dlq_partition']}]@{p['dlq_offset']}",
                p["dlq_service"] or "",
                p["dlq_failed_at"] or "",
                str(letter.replays),
                (p["dlq_error"] or "")[:200],
            )
        Console(width=200).print(table)

    @dlq_app.command("replay")
    def replay(
        topic: TopicOption,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="report only; publish nothing")] = False,
        max_messages: Annotated[int | None, typer.Option("--max", min=1, help="replay at most N")] = None,
        max_replays: Annotated[
            int, typer.Option(min=1, help="refuse messages already replayed this many times")
        ] = 3,
        tenant: Annotated[
            str | None,
            typer.Option(help="replay this tenant's letters only, leaving the others' as they are"),
        ] = None,
    ) -> None:
        """Re-publish dead letters to their topic; the DLQ group commits only after broker acks."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from libs.common.kafka.dlq import UnknownTopic, dlq_topic, replay_dead_letters
        from libs.common.settings import KafkaSettings

        try:
            resolved = dlq_topic(topic)
        except UnknownTopic as exc:
            raise typer.BadParameter(str(exc)) from None
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as progress:
            task = progress.add_task(f"replaying {resolved.dlq}", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = asyncio.run(
                replay_dead_letters(
                    KafkaSettings(),
                    resolved,
                    dry_run=dry_run,
                    max_messages=max_messages,
                    max_replays=max_replays,
                    on_progress=advance,
                    tenant=tenant,
                )
            )
        verb = "would replay" if dry_run else "replayed"
        typer.echo(
            f"{verb} {report.replayed} of {report.seen}; refused {len(report.refused)} "
            f"over the cap of {max_replays} replays; {len(report.foreign)} from another topic"
            + ("" if tenant is None else f"; {report.other_tenants} of other tenants left as they were")
        )
        for letter in report.refused:
            typer.echo(f"  refused {letter.partition}/{letter.offset}: {letter.header('dlq_error')}")
