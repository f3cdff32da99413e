"""Running a grid of experiments (config x fold) as Slurm array jobs.

* ``grid``: the grid file that maps each array task to one (config, fold) pair;
* ``cluster_settings``: ``scripts/slurm/cluster.env``, the one file a user edits;
* ``submit``: ``submit-grid``, which submits the training array and the
  comparison job that depends on it;
* ``collect``: the completeness check the comparison job runs first.

The job scripts are ``scripts/slurm/train_array.sbatch`` and
``scripts/slurm/compare.sbatch``.
"""
