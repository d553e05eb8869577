"""Where local state lives: everything the pipeline writes on a laptop goes under the git-ignored `.ragops/`."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_STORE = REPO_ROOT / ".ragops"
PARENT_RUN_FILE = "parent_run.json"  # names the MLflow parent run; travels between stage processes
