"""trainboard pipelines: the wiring of components into @dsl.pipeline definitions."""
