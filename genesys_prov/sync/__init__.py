"""The runs: gathering a plan's inputs, the run's phases, check, explain, provision, incidents."""
