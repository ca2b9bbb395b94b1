"""``python -m singularity_workflow``: the same command line as ``singularity-workflow``."""

from singularity_workflow.cli import main

if __name__ == "__main__":
    main(prog_name="singularity-workflow")
