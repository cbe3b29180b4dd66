"""Producer: replay reviews (dataset files or synthetic) onto Kafka at a chosen pace,
with delayed labels and named drift scenarios. Entry point: ``python -m producer``.
"""
