"""The feature store's contract: Arrow schemas, tensor encodings, records and the manifest."""

SCHEMA_VERSION = "2.0"  # 2.0: 8-bit tensors (images, frames) stored as bytes (schemas.tensors.pack_byte_tensors)
