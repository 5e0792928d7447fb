"""The feature store's contract: Arrow schemas, tensor encodings, records and the manifest."""

SCHEMA_VERSION = "3.0"  # 3.0: data under data/<split>/, rejects as JSON Lines (schemas.layout); 2.0: 8-bit tensors as bytes
