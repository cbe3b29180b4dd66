"""Operators' command-line tools that belong to no single service.

`spoiler-topics` (create or check the declared topics) and `spoiler-contracts`
(export the JSON Schemas, validate a file of messages). They live here, not in
`spoiler_common`, so that the shared package stays a library: it holds the
topic spec and the contracts, these only drive them.
"""
