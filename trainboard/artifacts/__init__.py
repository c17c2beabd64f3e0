"""What the components hand each other, and what the root keeps, each format in one module with its
reader and writer:

    dataset.py      the Dataset artifact (prepare_data -> train, evaluate)
    model.py        the Model artifact (train -> evaluate, promote)
    evaluation.py   the evaluation (evaluate -> promote)
    champion.py     <root>/champion.json, the champion record, and its compare-and-swap (promote, evaluate)

Components import these, never each other. Importing this package imports none of them: dataset.py
needs TensorFlow, the others do not.
"""
