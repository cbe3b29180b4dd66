"""The stream worker: Faust consumes reviews, ONNX scores them, predictions go back to Kafka.

Entry point: ``python -m stream_processor worker`` (see docs/stream_processor.md).
"""
