"""The team TensorBoard: the server over a root's runs (tensorboard_server.py) and the bucket mirror that
feeds its pod (bucket_mirror.py, the command; mirror.py, what it does; volume.py, its files; leases.py,
which runs are training; retention.py, which runs it keeps). Built on storage and the shared library;
TensorFlow-free."""
