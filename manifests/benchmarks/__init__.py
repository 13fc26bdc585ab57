"""Typed readers of the real benchmark annotation files, one module per benchmark.

Shared by the manifest builders and the evaluation scorers. Each reader checks the documented schema and raises
`manifests.errors.AnnotationError` naming the file, the key/row and the problem; it does not repair known
defects of the data (inverted boxes, zero-length segments): callers decide what to do with them.
"""
