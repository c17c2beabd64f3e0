"""The team TensorBoard's kustomize tree, as package data (trainboard.manifests): `trainboard manifests`
(trainboard/app/kustomize.py) reads it with importlib.resources, from a checkout, a wheel or the image
alike."""
