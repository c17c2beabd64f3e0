"""trainboard's KFP components, one folder each: core.py (plain Python with typed arguments, reading and
writing paths and URIs, testable without KFP) and component.py (the thin @dsl.component calling it).

A component imports the shared package (trainboard: storage, artifact formats, configs) and its own
modules, never another component (tests/test_architecture.py walks the imports).
"""
