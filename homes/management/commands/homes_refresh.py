"""Revalue every property of an environment, printing progress; --resume continues a run."""

from django.core.management import CommandError

from homes.models import RefreshRun
from homes.services import RefreshInProgress, refresh_continue, refresh_run, refresh_start
from institutions.tenancy import TenantCommand


class Command(TenantCommand):
    help = "Revalue every property of an environment (then equity and offer matches)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--resume", type=int, help="Id of an unfinished run to resume.")
        parser.add_argument("--status", action="store_true", help="Show recent runs and exit.")
        parser.add_argument("--queue", action="store_true", help="Queue it on Celery instead.")

    def handle_tenant(self, environment, *args, **options):
        if options["status"]:
            for run in RefreshRun.objects.filter(environment=environment)[:10]:
                self.stdout.write(f"{run.pk:>6} {run.status:<8} {run.progress_text} {run.as_of}")
            return
        if options["resume"]:
            run = RefreshRun.objects.filter(environment=environment, pk=options["resume"]).first()
            if run is None:
                raise CommandError(f"No refresh run {options['resume']} in this environment.")
            try:
                refresh_continue(
                    environment=environment,
                    run=run,
                    actor_label="manage.py",
                    enqueue=options["queue"],
                )
            except RefreshInProgress as busy:
                raise CommandError(str(busy)) from busy
            if options["queue"]:
                _raise_if_not_queued(run)
                self.stdout.write(f"Queued the rest of refresh {run.pk}.")
                return
        else:
            try:
                run = refresh_start(
                    environment=environment, actor_label="manage.py", enqueue=options["queue"]
                )
            except RefreshInProgress as busy:
                raise CommandError(str(busy)) from busy
            if options["queue"]:
                _raise_if_not_queued(run)
                self.stdout.write(f"Queued refresh {run.pk} ({run.total:,} properties).")
                return
        self.stdout.write(f"Refresh {run.pk}: {run.total:,} properties, from id {run.cursor}.")
        run = refresh_run(
            environment=environment,
            run=run,
            progress=lambda r: self.stdout.write(f"Refresh {r.pk}: {r.progress_text}"),
        )
        if run.status == RefreshRun.Status.FAILED:
            raise CommandError(f"Refresh {run.pk} failed: {run.error}")
        self.stdout.write(self.style.SUCCESS(f"Refresh {run.pk} {run.status}: {run.progress_text}"))


def _raise_if_not_queued(run: RefreshRun) -> None:
    """The run is stored either way; the task queue may not have taken it."""
    if run.queued is False:
        raise CommandError(
            f"Refresh {run.pk} is recorded (pending) but could not be queued: the task queue "
            f"is unreachable. Once it is back, queue it with --resume {run.pk} --queue, or "
            f"run it here with --resume {run.pk}."
        )
