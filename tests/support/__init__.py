"""What the tests and the benchmarks share: the real parts they run (a fake-gcs-server, the CLI, TensorBoard
over HTTP, a loopback KFP API, a pod from a rendered manifest) and readers of what trainboard writes."""
