"""The failures a command reports in one line, without a traceback.

Each kind is a subclass of one of these, raised where the problem is found (next to the code
that detects it: splits.DatasetNotBuiltError, deploy.runtime.ModelFileError, ...) with a
message that names the input and says what to do. cli.py prints `pyramid-fas <command>:
<message>` and exits with the code commands/exit_codes.py gives the kind; nothing between the
two catches them.
"""


class InputError(Exception):
  """An input the user has to fix, rebuild or re-export (a dataset, a record file, an export):
  exit code 2."""


class Stopped(Exception):
  """A run stopped on request (SIGTERM, SIGINT) after saving what resuming needs: exit code 75;
  the message says how to resume."""
