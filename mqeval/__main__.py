"""`python -m mqeval ...` is the same as the `mqeval` command."""
from mqeval.cli import app

app(prog_name="mqeval")
