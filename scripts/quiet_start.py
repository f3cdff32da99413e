"""Imported first by the benchmark scripts: TensorFlow's start-up log is hidden unless ``-v``, as in the commands.

The scripts import TensorFlow before they parse their arguments, so this looks
at ``sys.argv`` for ``-v`` before that import (``pipeline.console.quiet_unless_verbose``);
each script's ``main`` then takes ``-v``/``-q``/``--version`` through
``console.add_arguments`` and sets up logging with ``console.configure``.
"""

from pipeline import console

console.quiet_unless_verbose()
