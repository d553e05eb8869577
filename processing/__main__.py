"""`python -m processing ...`"""

import sys

from processing.cli import finish_trace_export, main

status = main()
finish_trace_export()
sys.exit(status)
