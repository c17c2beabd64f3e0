"""Kubeflow Pipelines on a cluster: `trainboard submit` and `trainboard schedule` without the CLI.

    settings.py       where the cluster is: flags, then environment, then config file, then defaults
    pipeline_spec.py  the compiled pipeline and its declared parameters
    params.py         --param KEY=VALUE parsed by those types and checked as the tasks would
    cron.py           cron expressions as the KFP scheduler reads them
    auth.py           the credentials the client sends
    connection.py     the health check, then kfp.Client with the same credentials
    runs.py           submit one run, wait for its final state
    recurring_runs.py schedule, list, pause, resume, delete

TensorFlow-free.
"""
