"""``python -m singularity_workflow.cli``: the same as ``singularity-workflow``."""

from singularity_workflow.cli import main

main()
