"""The whole-system drivers: every stage run by the project's own commands, through normal imports.

| module | what |
|---|---|
| `experiment.py` | run the stages (train, eval.run, baselines, eval.score) into logs; score each method on its tasks |
| `results_table.py` | one table of many methods' metrics over the scorers' headline figures |
| `config.py` | the typed configs of demo and compare (flags and `key=value` overrides) |
| `demo.py` | `python -m eval.drivers.demo` (`make demo`): the whole system on a generated world |
| `compare.py` | `python -m eval.drivers.compare` (`make compare`): every registered method, one budget, one table |
"""
