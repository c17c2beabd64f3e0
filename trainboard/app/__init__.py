"""The application: what a person runs. The `trainboard` CLI (cli/, one module per command), Kubeflow
Pipelines on a cluster (cluster/: compile, submit, schedule), the whole pipeline on this machine
(local_run.py) and the manifests rendered for a bucket (kustomize.py). It may import every other layer;
nothing imports it."""
