"""Running jobs: spawning processes, waiting for them, their output, their process groups."""
