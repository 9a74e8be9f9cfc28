"""The accuracy benchmark's commands, one Typer app (see the package's docstring)."""
import typer

from .probe import probe
from .running import package, rescore, run
from .tables import table
from .trace import trace

app = typer.Typer(add_completion=False, no_args_is_help=True, help="The accuracy benchmark (rows of runs).")
for name, command in (
    ("run", run), ("rescore", rescore), ("table", table), ("probe", probe), ("trace", trace), ("package", package)
):
    app.command(name)(command)
